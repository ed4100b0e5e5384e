"""Giving a long-running service's freed C-heap memory back to the operating system.

glibc keeps freed blocks inside its heaps for reuse and returns only what is free at the very top
of each heap. MLX's arrays (weights, KV caches, activations of every decoding step, all allocated
with malloc on the CPU) and the buffers of a 64-thread gRPC pool are freed in the middle of those
heaps, so a service's resident memory climbs to the sum of its past peaks, spread over many
arenas, while what it holds stays level: in a 10-minute soak the inference service's heap held
~0.8 GB throughout and its free-but-resident part grew from 0.35 to 0.64 GB. `malloc_trim` hands
the free pages of every arena back (they are faulted in again if reused), so resident memory
follows what the process actually holds. Elsewhere (macOS's allocator, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)

# How often a service's idle main thread trims (mlxhub.telemetry.serve_until_signalled): each trim
# takes a few milliseconds per hundred megabytes of free heap, holding each arena's lock meanwhile.
RELEASE_EVERY_S = 10.0


@functools.cache
def _malloc_trim():
    """glibc's `malloc_trim`, or None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return the C heap's free pages to the OS; True if any were returned."""
    trim = _malloc_trim()
    return bool(trim is not None and trim(0))
