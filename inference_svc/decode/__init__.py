"""Decoding: the engine thread (`engine`) and what it is made of — a request and its decode
state (`generation`), loads off the engine thread (`loads`), continuous batching (`batching`),
a request decoding alone (`solo`), samplers (`sampling`) and stop strings (`stops`)."""
