"""`mlx-hub models import` and `mlx-hub generate` / `chat` as a person types them,
against real registry and inference services."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mlxhub.cli import app
from mlxhub.importer import demo_gguf


@pytest.fixture
def cli(hub_env, inference):
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), env={**hub_env, "COLUMNS": "200", "MLXHUB_API_KEY": ""}, input=input)

    return invoke


def test_import_then_generate_and_chat(cli, settings, tmp_path):
    imported = cli("models", "import", str(demo_gguf()), "--name", "smollm2", "--alias", "default", "--json")
    assert imported.exit_code == 0, imported.output
    assert '"version": "1"' in imported.stdout and str(settings.models_dir / "smollm2") in imported.stdout

    answer = cli("generate", "smollm2@default", "What is the capital of France?", "--max-tokens", "12")
    assert answer.exit_code == 0, answer.output
    assert "Paris" in answer.stdout and "smollm2/versions/1" in answer.stderr

    talk = cli("chat", "smollm2", "--max-tokens", "12", input="What is the capital of France?\n/exit\n")
    assert talk.exit_code == 0, talk.output
    assert "Paris" in talk.stdout

    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(demo_gguf().read_bytes()[:3_000_000])
    broken = cli("models", "import", str(truncated), "--name", "cut")
    assert broken.exit_code == 1 and "error: cannot read" in broken.stderr and "Traceback" not in broken.output
    assert not (settings.models_dir / "cut").exists()

    missing = cli("generate", "nobody", "hi")
    assert missing.exit_code == 1 and "not found" in missing.stderr.lower()
