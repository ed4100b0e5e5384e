"""Giving a long-running service's freed C-heap memory back to the operating system.

glibc keeps freed blocks inside its heaps for reuse and returns only what is free at the very top
of each heap. MLX's arrays (weights, KV caches, activations of every decoding step, all allocated
with malloc on the CPU) and the buffers of a 64-thread gRPC pool are freed in the middle of those
heaps, so a service's resident memory climbs to the sum of its past peaks, spread over many
arenas, while what it holds stays level: in a 10-minute soak the inference service's heap held
~0.8 GB throughout and its free-but-resident part grew from 0.35 to 0.64 GB. `malloc_trim` hands
the free pages of every arena back (they are faulted in again if reused), so resident memory
follows what the process actually holds. Threads spread the heap further: glibc gives threads
that contend up to eight arenas per core, each keeping its own free blocks, so a service caps
them (`limit_arenas`, first thing in main()). Elsewhere (macOS's allocator, musl) both do
nothing.
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
# Heap arenas a service may use (glibc's M_ARENA_MAX; its default is 8 per core): the GIL lets one
# thread run Python at a time, so more arenas than this mostly add free blocks nobody reuses.
ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


@functools.cache
def _glibc(name: str):
    """A function of glibc's allocator, or None where the C library has none."""
    try:
        found = getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None
    found.restype = ctypes.c_int
    return found


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap the heap arenas threads may add from now on; True where the allocator took it. Call it
    first thing in a process: glibc fixes the cap at its default once the process has 9 arenas."""
    mallopt = _glibc("mallopt")
    return bool(mallopt is not None and mallopt(ctypes.c_int(_M_ARENA_MAX), ctypes.c_int(arenas)))


def release_free_memory() -> bool:
    """Return the C heap's free pages to the OS; True if any were returned."""
    trim = _glibc("malloc_trim")
    return bool(trim is not None and trim(ctypes.c_size_t(0)))
