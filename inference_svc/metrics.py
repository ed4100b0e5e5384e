"""Prometheus metrics of the inference service (served by `mlxhub.telemetry.start_metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

TTFT = Histogram("mlxhub_inference_time_to_first_token_seconds", "Request received to first token", ["model"],
                 buckets=_LATENCY)
INTER_TOKEN = Histogram("mlxhub_inference_inter_token_seconds", "Time between consecutive tokens of a stream", ["model"],
                        buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1))
E2E = Histogram("mlxhub_inference_request_seconds", "Request received to last token", ["model"],
                buckets=(*_LATENCY, 60, 120, 300))
PROMPT_TOKENS = Counter("mlxhub_inference_prompt_tokens_total", "Prompt tokens processed", ["model"])
CACHED_PROMPT_TOKENS = Counter("mlxhub_inference_cached_prompt_tokens_total",
                               "Prompt tokens reused from the prompt cache instead of computed", ["model"])
PROMPT_CACHE_BYTES = Gauge("mlxhub_inference_prompt_cache_bytes", "KV-cache bytes kept for prompt reuse",
                           ["model_version"])
GENERATED_TOKENS = Counter("mlxhub_inference_generated_tokens_total", "Tokens generated", ["model"])
REQUESTS = Counter("mlxhub_inference_requests_total", "Finished requests by finish reason", ["model", "finish_reason"])
QUEUE_DEPTH = Gauge("mlxhub_inference_queue_depth", "Requests waiting for a batch slot")
RUNNING = Gauge("mlxhub_inference_running_requests", "Requests in the decode batch")
LOADED = Gauge("mlxhub_inference_loaded_models", "Loaded model versions (1 while loaded)", ["model_version", "kind"])
LOADED_BYTES = Gauge("mlxhub_inference_loaded_model_bytes", "Weight bytes of a loaded version", ["model_version"])
EVICTIONS = Counter("mlxhub_inference_cache_evictions_total", "Versions unloaded from the cache", ["reason"])
ENGINE_RESTARTS = Counter("mlxhub_inference_engine_restarts_total",
                          "Times the engine thread died and was replaced (its running requests failed)")
BACKEND = Info("mlxhub_inference_backend", "Compute backend, BLAS and weight format in use")
