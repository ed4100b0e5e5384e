"""Put MLX on an optimized BLAS on Linux, before MLX loads.

The `mlx[cpu]` wheel links the reference (netlib) BLAS: fp32 matmul runs at a few
GFLOP/s. MLX calls `cblas_sgemm` through the dynamic linker, so a library that
exports the standard `cblas_*` names and is loaded with RTLD_GLOBAL *before*
`import mlx` wins symbol resolution (loading it after MLX has no effect).

On Linux x86-64 the project depends on two such libraries:
- `mkl` (Intel oneMKL), chosen on Intel CPUs. Decoding calls sgemm with one row
  (batch 1); OpenBLAS packs the whole weight matrix for that, oneMKL streams it like
  a matrix-vector product: 3-4x faster matmuls, ~1.5x single-stream decode (SmolLM2).
- `ngsolve-openblas` (OpenBLAS exporting `cblas_*`), chosen on other CPUs (AMD:
  oneMKL's fast paths are tuned for Intel) or when oneMKL cannot load. It needs
  `libgfortran.so.5`; the mlx-cpu wheel ships a copy under a mangled name, so we
  load OpenBLAS through a private directory of symlinks (OpenBLAS's RPATH is
  `$ORIGIN`, which then finds the `libgfortran.so.5` symlink beside it).
`MLXHUB_BLAS` chooses: `auto` (default), `mkl`, `openblas`, `off`, or the path of any
library that exports `cblas_sgemm`.
On macOS none of this applies: MLX runs on Metal (and Accelerate on the CPU).
The inference and trainer packages call `enable()` when they are imported.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import importlib.metadata
import importlib.util
import logging
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlxhub.config import ConfigError, load_settings

log = logging.getLogger(__name__)

REFERENCE = "reference (netlib, bundled with mlx[cpu])"


@dataclass
class BlasState:
    """What `enable` did; `name` is what logs, GetServerInfo and metrics report."""

    name: str
    active: bool
    library: str = ""
    reason: str = ""


_state: BlasState | None = None


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    places = list(spec.submodule_search_locations or []) if spec else []
    return Path(places[0]) if places else None


def _wheel_openblas() -> Path | None:
    place = _package_dir("ngsolve_openblas")
    found = sorted(glob.glob(str(place / "libopenblas*.so*"))) if place else []
    return Path(found[0]) if found else None


def _wheel_mkl() -> Path | None:
    """oneMKL's single dynamic library from the `mkl` wheel (it lives in the environment's lib/)."""
    try:
        files = importlib.metadata.distribution("mkl").files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    found = sorted(Path(f.locate()).resolve() for f in files if f.name.startswith("libmkl_rt.so"))
    return found[0] if found else None


def _system_openblas() -> Path | None:
    found = ctypes.util.find_library("openblas")
    return Path(found) if found else None


def cpu_vendor() -> str:
    """The CPU's vendor id ("GenuineIntel", "AuthenticAMD", ...), or "" when it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def preferred(setting: str, vendor: str) -> list[str]:
    """The libraries to try, best first, for an `MLXHUB_BLAS` setting on a CPU of `vendor`."""
    if setting == "auto":
        return ["mkl", "openblas"] if vendor == "GenuineIntel" else ["openblas", "mkl"]
    return [setting]


def _locate(choice: str) -> Path | None:
    if choice == "mkl":
        return _wheel_mkl()
    if choice == "openblas":
        return _wheel_openblas() or _system_openblas()
    path = Path(choice)
    return path if path.exists() or not path.is_absolute() else None


def _mlx_libs() -> list[Path]:
    """The runtime libraries the mlx-cpu wheel ships, libgfortran among them (found without importing mlx)."""
    try:
        files = importlib.metadata.distribution("mlx-cpu").files or []
    except importlib.metadata.PackageNotFoundError:
        return []
    return sorted(Path(f.locate()).resolve() for f in files if f.parent.name == "mlx_cpu.libs" and ".so" in f.name)


def _load_with_gfortran(library: Path) -> ctypes.CDLL:
    """Load `library` (RTLD_GLOBAL) from a private directory where `libgfortran.so.5` resolves."""
    work = Path(tempfile.mkdtemp(prefix="mlxhub-blas-"))
    try:
        link = work / library.name
        link.symlink_to(library)
        for lib in _mlx_libs():  # under their own names (libquadmath-<hash> is NEEDED by that libgfortran) ...
            (work / lib.name).symlink_to(lib)
            if lib.name.startswith("libgfortran"):  # ... and under the name OpenBLAS asks for
                (work / "libgfortran.so.5").symlink_to(lib)
        return ctypes.CDLL(str(link), mode=ctypes.RTLD_GLOBAL)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # once mapped, the links are not needed


def _load(library: Path) -> ctypes.CDLL:
    if library.name.startswith("libmkl"):  # finds its own parts beside its real path; needs no libgfortran
        if not any(library.resolve().parent.glob("libmkl_core.so*")):  # oneMKL exits the process if it is missing
            raise OSError(f"libmkl_core is not beside {library.resolve()}")
        # Its OpenMP threads spin 200 ms after each call by default: a process that goes idle then holds a
        # core the next one needs (a 2-core box serving and training). 20 ms still spans the gap between two
        # decode steps (same tokens/s as 200 here); 0 halves batched decode.
        os.environ.setdefault("KMP_BLOCKTIME", "20")
        return ctypes.CDLL(str(library.resolve()), mode=ctypes.RTLD_GLOBAL)
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # the same, for OpenBLAS's threads
    return _load_with_gfortran(library) if library.is_absolute() else ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)


def _describe(handle: ctypes.CDLL, fallback: str) -> str:
    if hasattr(handle, "openblas_get_config"):
        config = handle.openblas_get_config
        config.restype = ctypes.c_char_p
        return config().decode(errors="replace").strip()
    if hasattr(handle, "MKL_Get_Version_String"):
        text = ctypes.create_string_buffer(256)
        handle.MKL_Get_Version_String(text, len(text))
        found = re.search(r"Version (\S+?)-Product Build (\d+)", text.value.decode(errors="replace"))
        return f"oneMKL {found[1]} (build {found[2]})" if found else "oneMKL"
    return fallback


def enable(setting: str | None = None) -> BlasState:
    """Load the fast BLAS once per process (idempotent); never raises: falls back to the reference BLAS."""
    global _state
    if _state is not None:
        return _state
    if setting is None:
        try:
            setting = load_settings().blas
        except ConfigError:  # the process reports it when it loads its settings; BLAS need not wait for that
            setting = "auto"
    setting = setting.strip() or "auto"
    if sys.platform != "linux":
        _state = BlasState("Accelerate / Metal (macOS)" if sys.platform == "darwin" else "platform default", False,
                           reason="only Linux needs a BLAS swap")
        return _state
    if setting == "off":
        _state = BlasState(REFERENCE, False, reason="MLXHUB_BLAS=off")
        return _state
    if "mlx.core" in sys.modules:
        _state = BlasState(REFERENCE, False, reason="mlx was imported before mlxhub.blas.enable(); enable it first")
        log.warning("fast BLAS not loaded: %s", _state.reason)
        return _state
    reasons = []
    for choice in preferred(setting, cpu_vendor()):
        library = _locate(choice)
        if library is None:
            reasons.append(f"no {choice} library installed" if choice in ("mkl", "openblas") else f"no file {choice}")
            continue
        try:
            handle = _load(library)
            handle.cblas_sgemm  # noqa: B018 - must export the standard name MLX calls
        except (OSError, AttributeError) as exc:
            reasons.append(f"cannot use {library}: {exc}")
            continue
        _state = BlasState(_describe(handle, library.name), True, str(library))
        return _state
    _state = BlasState(REFERENCE, False, reason="; ".join(reasons) + " (install mkl or ngsolve-openblas, or set MLXHUB_BLAS)")
    log.warning("fast BLAS not loaded: %s", _state.reason)
    return _state


def state() -> BlasState:
    return enable()
