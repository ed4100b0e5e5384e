"""`mlx-hub models import` and `mlx-hub generate` / `chat` as a person types them,
against real registry and inference services."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mlxhub.cli import app
from mlxhub.cli.generate import generate_request
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


def test_generate_sampling_flags_reach_the_service(cli):
    assert cli("models", "import", str(demo_gguf()), "--name", "smollm2", "--alias", "default").exit_code == 0
    question = ("generate", "smollm2", "What is the capital of France?", "--max-tokens", "12")

    plain = cli(*question)
    assert plain.exit_code == 0 and "Paris" in plain.stdout, plain.output
    stopped = cli(*question, "--stop", "Paris", "--stop", "paris")
    assert stopped.exit_code == 0, stopped.output
    assert "Paris" not in stopped.stdout and stopped.stderr.strip().endswith(", stop")

    sampled = cli(*question, "--temperature", "0.8", "--seed", "7", "--top-p", "0.9", "--top-k", "20",
                  "--min-p", "0.05", "--repetition-penalty", "1.2")
    assert sampled.exit_code == 0 and "smollm2/versions/1" in sampled.stderr, sampled.output

    for flag, value, field in (("--top-p", "1.5", "top_p"), ("--top-k", "-1", "top_k"), ("--min-p", "1", "min_p"),
                               ("--repetition-penalty", "-2", "repetition_penalty")):
        refused = cli("generate", "smollm2", "hi", flag, value)
        assert refused.exit_code == 1 and f"sampling.{field}" in refused.stderr, (flag, refused.output)
        assert "Traceback" not in refused.output
    too_many = cli("generate", "smollm2", "hi", *[arg for i in range(9) for arg in ("--stop", f"s{i}")])
    assert too_many.exit_code == 1 and "sampling.stop" in too_many.stderr, too_many.output


def test_generate_request_maps_each_flag_to_its_sampling_field():
    request = generate_request("m", "hi", raw=True, max_tokens=5, temperature=0.5, seed=0, top_p=0.9, top_k=40,
                               min_p=0.1, repetition_penalty=1.3, stop=["\n\n", "END"])
    s = request.sampling
    assert (request.prompt, list(request.messages)) == ("hi", [])
    assert (s.max_tokens, s.temperature, s.seed, s.has_seed) == (5, 0.5, 0, True)
    assert (s.top_p, s.top_k, s.repetition_penalty, list(s.stop)) == (0.9, 40, 1.3, ["\n\n", "END"])
    assert abs(s.min_p - 0.1) < 1e-9
    chat = generate_request("m", "hi").sampling
    assert [m.content for m in generate_request("m", "hi").messages] == ["hi"]
    assert (chat.top_p, chat.top_k, chat.min_p, chat.repetition_penalty, list(chat.stop), chat.has_seed) == (
        0, 0, 0, 0, [], False)
