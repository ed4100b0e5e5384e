"""GGUF import: the real demo model converts into a working mlx-lm directory, a broken
file fails clearly and leaves nothing behind, and `mlx-hub models import` registers
the result with where it came from."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from mlxhub.digest import sha256_file
from mlxhub.gguf import GGUFError, convert
from mlxhub.importer import demo_gguf, import_model
from mlxhub.v1 import registry_pb2 as pb

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_converted_smollm2_answers_paris_with_plain_mlx_lm(smollm2: Path):
    from mlx_lm import generate, load

    config = json.loads((smollm2 / "config.json").read_text())
    assert config["rope_traditional"] is True and config["model_type"] == "llama"
    assert "chat_template" in json.loads((smollm2 / "tokenizer_config.json").read_text())
    model, tokenizer = load(str(smollm2))
    prompt = tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True)
    assert "Paris" in generate(model, tokenizer, prompt, max_tokens=12)


def test_truncated_gguf_fails_clearly_and_leaves_nothing(tmp_path: Path):
    source = demo_gguf()
    truncated = tmp_path / "broken.gguf"
    with open(source, "rb") as handle:
        truncated.write_bytes(handle.read(5_000_000))
    destination = tmp_path / "models" / "broken" / "v1"
    with pytest.raises(GGUFError, match="past the end of the file"):
        convert(truncated, destination)
    assert not (tmp_path / "models").exists()


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path):
    other = tmp_path / "model.bin"
    other.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(GGUFError, match="not a GGUF file"):
        convert(other, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_import_registers_version_with_source_checksum(registry_stub, settings, smollm2: Path, tmp_path: Path):
    source = tmp_path / "tiny.gguf"
    source.symlink_to(demo_gguf())
    version = import_model(registry_stub, settings.models_dir, source, "smol", alias="default")
    assert (version.model, version.version, list(version.aliases)) == ("smol", 1, ["default"])
    artifact = Path(version.artifact_path)
    assert artifact.parent == settings.models_dir.resolve() / "smol" and (artifact / "model.safetensors").is_file()
    lineage = registry_stub.GetLineage(pb.GetLineageRequest(name="smol", version=1)).lineage
    assert (lineage.source, lineage.source_sha256) == ("imported", sha256_file(source))
    assert lineage.source_uri == source.resolve().as_uri()
    # An mlx-lm directory is registered as it is, without a copy.
    again = import_model(registry_stub, settings.models_dir, smollm2, "smol")
    assert (again.version, again.artifact_path) == (2, str(smollm2))


def test_failed_registration_removes_the_converted_directory(registry_stub, settings, tmp_path: Path):
    source = demo_gguf()

    class Refusing:
        def CreateModel(self, request, timeout=None):
            return registry_stub.CreateModel(request, timeout=timeout)

        def CreateModelVersion(self, request, timeout=None):
            assert Path(request.artifact_path).is_dir()  # converted before registering
            return registry_stub.CreateModelVersion(pb.CreateModelVersionRequest(name="nope", artifact_path="/"))

    with pytest.raises(grpc.RpcError) as caught:
        import_model(Refusing(), settings.models_dir, source, "smol")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert list((settings.models_dir / "smol").iterdir()) == []
