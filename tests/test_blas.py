"""The fast-BLAS choice: which library each `MLXHUB_BLAS` setting loads, that MLX's calls
then resolve to it, and that a bad setting falls back to the reference BLAS with a reason.
Each case runs in a fresh interpreter: the choice is made once, before MLX loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mlxhub import blas

PROBE = """
import ctypes, json, sys
from mlxhub import blas
state = blas.enable()
import mlx.core as mx, numpy as np
a = np.random.default_rng(0).standard_normal((64, 48), dtype=np.float32)
b = np.random.default_rng(1).standard_normal((48, 32), dtype=np.float32)
error = float(np.abs(np.array(mx.array(a) @ mx.array(b)) - a @ b).max())
resolved = ""  # the library that the process-wide lookup of cblas_sgemm (MLX's) lands in
if state.active:
    lib = ctypes.CDLL(None)
    info = (ctypes.c_void_p * 4)()
    ctypes.CDLL("libc.so.6").dladdr(ctypes.cast(lib.cblas_sgemm, ctypes.c_void_p), info)
    resolved = ctypes.cast(info[0], ctypes.c_char_p).value.decode()
print(json.dumps({"name": state.name, "active": state.active, "library": state.library,
                  "reason": state.reason, "error": error, "resolved": resolved}))
"""


def probe(setting: str) -> dict:
    env = {**os.environ, "MLXHUB_BLAS": setting}
    out = subprocess.run([sys.executable, "-c", PROBE], check=False, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_auto_prefers_onemkl_on_intel_and_openblas_elsewhere():
    assert blas.preferred("auto", "GenuineIntel") == ["mkl", "openblas"]
    assert blas.preferred("auto", "AuthenticAMD") == ["openblas", "mkl"]
    assert blas.preferred("auto", "") == ["openblas", "mkl"]
    assert blas.preferred("openblas", "GenuineIntel") == ["openblas"]
    assert blas.cpu_vendor()  # readable on Linux


@pytest.mark.parametrize(("setting", "name"), [("mkl", "oneMKL"), ("openblas", "OpenBLAS")])
def test_each_library_loads_and_serves_mlx_matmuls(setting, name):
    found = probe(setting)
    assert found["active"] and found["name"].startswith(name), found
    # MLX's sgemm is this library's (OpenBLAS is mapped through a symlink of the same name; see mlxhub.blas)
    assert os.path.basename(found["resolved"]) == os.path.basename(found["library"])
    assert found["error"] < 1e-3


def test_auto_loads_what_the_cpu_prefers():
    found = probe("auto")
    expected = "oneMKL" if blas.cpu_vendor() == "GenuineIntel" else "OpenBLAS"
    assert found["active"] and found["name"].startswith(expected), found


@pytest.mark.parametrize(("setting", "reason"), [("off", "MLXHUB_BLAS=off"), ("/no/such/libblas.so", "no file /no/such/libblas.so")])
def test_off_or_a_missing_library_keeps_the_reference_blas(setting, reason):
    found = probe(setting)
    assert not found["active"] and found["name"] == blas.REFERENCE
    assert reason in found["reason"]
    assert found["error"] < 1e-3  # still correct, only slow
