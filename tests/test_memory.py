"""mlxhub.memory: freed memory in the middle of the C heap goes back to the OS when trimmed."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

import pytest

from mlxhub.memory import limit_arenas, release_free_memory


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_free_blocks_below_a_live_one_are_released_by_a_trim():
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    release_free_memory()  # what earlier tests left free is returned first
    # 64 KiB blocks are below glibc's mmap threshold: they come from the heap, one after another,
    # and freeing all but the last leaves 32 MiB free under a live block, which glibc keeps.
    blocks = [libc.malloc(64 * 1024) for _ in range(512)]
    for block in blocks:
        ctypes.memset(block, 1, 64 * 1024)  # resident
    for block in blocks[:-1]:
        libc.free(block)
    try:
        before = resident_bytes()
        assert release_free_memory() is True
        assert before - resident_bytes() >= 16 * 1024 * 1024  # most of the 32 MiB left the process
    finally:
        libc.free(blocks[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's M_ARENA_MAX is glibc's")
def test_the_arena_cap_is_taken_by_glibc():
    assert limit_arenas() is True  # mallopt found, called with its parameter number, and accepted
