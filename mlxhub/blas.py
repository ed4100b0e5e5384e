"""Put MLX on an optimized BLAS on Linux, before MLX loads.

The `mlx[cpu]` wheel links the reference (netlib) BLAS: fp32 matmul runs at a few
GFLOP/s. MLX calls `cblas_sgemm` through the dynamic linker, so a library that
exports the standard `cblas_*` names and is loaded with RTLD_GLOBAL *before*
`import mlx` wins symbol resolution (loading it after MLX has no effect).

The project depends on `ngsolve-openblas` (an OpenBLAS build exporting `cblas_*`)
on Linux x86-64. It needs `libgfortran.so.5`; the mlx-cpu wheel ships a copy
under a mangled name, so we load OpenBLAS through a private directory of
symlinks (OpenBLAS's RPATH is `$ORIGIN`, which then finds the `libgfortran.so.5`
symlink beside it). `MLXHUB_BLAS` chooses: `auto` (default), `off`, or the path
of any library that exports `cblas_sgemm` (a system OpenBLAS, MKL, ...).
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
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

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


def _describe(handle: ctypes.CDLL, fallback: str) -> str:
    try:
        config = handle.openblas_get_config
    except AttributeError:
        return fallback
    config.restype = ctypes.c_char_p
    return config().decode(errors="replace").strip()


def enable(setting: str | None = None) -> BlasState:
    """Load the fast BLAS once per process (idempotent); never raises: falls back to the reference BLAS."""
    global _state
    if _state is not None:
        return _state
    setting = (setting if setting is not None else os.environ.get("MLXHUB_BLAS", "auto")).strip() or "auto"
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
    if setting == "auto":
        candidate = _wheel_openblas()
        if candidate is None:
            system = ctypes.util.find_library("openblas")
            candidate = Path(system) if system else None
    else:
        candidate = Path(setting)
    if candidate is None:
        _state = BlasState(REFERENCE, False, reason="no OpenBLAS found (install ngsolve-openblas or set MLXHUB_BLAS)")
        return _state
    # OpenBLAS threads that spin after each call fight MLX's own threads on small machines.
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    try:
        handle = _load_with_gfortran(candidate) if candidate.is_absolute() else ctypes.CDLL(str(candidate), mode=ctypes.RTLD_GLOBAL)
        handle.cblas_sgemm  # noqa: B018 - must export the standard name MLX calls
    except (OSError, AttributeError) as exc:
        _state = BlasState(REFERENCE, False, str(candidate), reason=f"cannot use {candidate}: {exc}")
        log.warning("fast BLAS not loaded: %s", _state.reason)
        return _state
    _state = BlasState(_describe(handle, candidate.name), True, str(candidate))
    return _state


def state() -> BlasState:
    return enable()
