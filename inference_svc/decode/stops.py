"""Stop strings over streamed text. A stop string can span tokens, so text that could still
grow into one is held back until the next token decides; the text before the earliest stop
string is released and the rest never is."""

from __future__ import annotations


def find_stop(text: str, stops: tuple[str, ...], emitted: int) -> int | None:
    """Index of the earliest stop string that ends after `emitted` (text before it is released)."""
    if not stops:
        return None
    start = max(0, emitted - max(len(s) for s in stops))
    found = [i for i in (text.find(s, start) for s in stops) if i >= 0]
    return min(found) if found else None


def held_back(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest tail of `text` that could still grow into a stop string."""
    best = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:k]):
                best = k
                break
    return best
