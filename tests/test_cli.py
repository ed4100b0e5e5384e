"""The `mlx-hub` CLI against a real registry server (real PostgreSQL and NATS):
what a person types, what they see, and how errors read."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlxhub.cli import app

CHAT = [
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
    {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]},
]


@pytest.fixture
def cli(hub_env):
    """Run `mlx-hub ARGS...` with the test hub's environment; return the click Result."""
    runner = CliRunner()
    env = {**hub_env, "COLUMNS": "250", "MLXHUB_API_KEY": ""}

    def invoke(*args: str, **overrides: str):
        return runner.invoke(app, list(args), env={**env, **overrides}, prog_name="mlx-hub")

    return invoke


@pytest.fixture
def hub(registry, cli):
    """`cli` with a registry server answering (conftest's `registry` fixture)."""
    return cli


def ok(result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result.stdout


def failed(result, code: int = 1) -> str:
    assert result.exit_code == code, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.output
    return result.stderr


def make_model_dir(root: Path) -> Path:
    """A minimal mlx-lm-shaped directory: config.json and a valid one-tensor safetensors file."""
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 8}))
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    (root / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + struct.pack("<f", 1.0))
    return root


def test_models_create_list_show_update(hub):
    out = ok(hub("models", "create", "demo", "--base-model", "HuggingFaceTB/SmolLM2-135M-Instruct",
                 "--description", "first model", "--tag", "team=nlp", "--tag", "stage=dev"))
    assert "demo" in out and "first model" in out

    listed = json.loads(ok(hub("models", "list", "--json")))
    assert [m["name"] for m in listed["models"]] == ["demo"]
    assert listed["models"][0]["tags"] == {"team": "nlp", "stage": "dev"}
    assert "demo" in ok(hub("models", "list"))

    ok(hub("models", "update", "demo", "--description", "better"))
    shown = json.loads(ok(hub("models", "show", "demo", "--json")))
    assert shown["description"] == "better"
    assert shown["baseModel"] == "HuggingFaceTB/SmolLM2-135M-Instruct"  # not in the mask: unchanged
    assert shown["tags"] == {"team": "nlp", "stage": "dev"}
    assert "better" in ok(hub("models", "show", "demo"))


def test_errors_are_one_line_and_exit_1(hub):
    err = failed(hub("models", "show", "nope"))
    assert err.startswith("error: ") and "nope" in err

    err = failed(hub("models", "create", "Bad Name"))
    assert err.startswith("error: ")
    assert "\n  name: " in err  # the field violation, indented under the message

    ok(hub("models", "create", "twice"))
    assert failed(hub("models", "create", "twice")).startswith("error: ")


def test_bad_usage_exits_2(cli):
    failed(cli("models", "create", "x", "--tag", "no-equals-sign"), code=2)
    failed(cli("models", "update", "x"), code=2)
    failed(cli("models", "alias-history", "x", "prod", "--at", "yesterday-ish"), code=2)
    failed(cli("events", "--limit", "-1"), code=2)
    failed(cli("models", "frobnicate"), code=2)


def test_unreachable_registry_says_so(cli):
    err = failed(cli("models", "list", MLXHUB_REGISTRY_ADDR="127.0.0.1:1"))
    assert "error: cannot reach 127.0.0.1:1" in err and "mlx-hub up" in err


def test_datasets_register_list_show(hub, hub_home):
    path = hub_home / "datasets" / "chat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in CHAT))
    out = ok(hub("datasets", "register", "chat", str(path), "--description", "two chats"))
    assert "chat" in out

    listed = json.loads(ok(hub("datasets", "list", "--json")))
    [dataset] = listed["datasets"]
    assert dataset["name"] == "chat"
    assert dataset["recordCount"] == "2"  # int64 is a string in canonical JSON
    assert dataset["format"] == "DATASET_FORMAT_CHAT"
    assert len(dataset["sha256"]) == 64
    shown = ok(hub("datasets", "show", "chat"))
    assert "two chats" in shown and dataset["sha256"] in shown

    outside = hub_home.parent / "elsewhere.jsonl"
    outside.write_text(json.dumps(CHAT[0]) + "\n")
    assert "path" in failed(hub("datasets", "register", "outside", str(outside)))


def test_versions_aliases_lineage_resolve(hub, tmp_path):
    ok(hub("models", "create", "demo", "--base-model", "smollm2"))
    ok(hub("models", "register-version", "demo", str(make_model_dir(tmp_path / "v1")), "--description", "one"))
    ok(hub("models", "register-version", "demo", str(make_model_dir(tmp_path / "v2"))))

    versions = json.loads(ok(hub("models", "versions", "demo", "--json")))["versions"]
    assert [v["version"] for v in versions] == ["1", "2"]
    assert {f["path"] for f in versions[0]["files"]} == {"config.json", "model.safetensors"}

    assert "(new alias)" in ok(hub("models", "alias", "demo", "prod", "1"))
    before_move = datetime.now(UTC)
    assert "(was 1)" in ok(hub("models", "alias", "demo", "prod", "2"))

    resolved = json.loads(ok(hub("models", "resolve", "demo@prod", "--json")))
    assert resolved["version"]["version"] == "2"
    assert "demo/versions/1" in ok(hub("models", "resolve", "demo/versions/1"))

    history = json.loads(ok(hub("models", "alias-history", "demo", "prod", "--at", before_move.isoformat(), "--json")))
    assert [m["version"] for m in history["moves"]] == ["1", "2"]
    assert history["versionAtTime"] == "1"
    assert "version 1" in ok(hub("models", "alias-history", "demo", "prod", "--at", before_move.isoformat()))

    lineage = json.loads(ok(hub("models", "lineage", "demo", "1", "--json")))
    assert lineage["lineage"]["model"] == "demo" and lineage["lineage"]["version"] == "1"
    assert "lineage of demo/versions/1" in ok(hub("models", "lineage", "demo", "1"))

    assert failed(hub("models", "resolve", "demo@staging")).startswith("error: ")


def test_events_in_order_with_filters(hub, hub_home, tmp_path):
    ok(hub("models", "create", "a"))
    ok(hub("models", "create", "b"))
    ok(hub("models", "register-version", "b", str(make_model_dir(tmp_path / "b1"))))
    ok(hub("models", "alias", "b", "prod", "1"))
    path = hub_home / "datasets" / "d.jsonl"
    path.write_text(json.dumps({"text": "hello"}) + "\n")
    ok(hub("datasets", "register", "d", str(path)))

    lines = ok(hub("events", "--json")).splitlines()
    events = [json.loads(line) for line in lines]
    positions = [int(e["position"]) for e in events]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    types = [e["type"] for e in events]
    assert types.count("ModelRegistered") == 2
    assert {"ModelVersionCreated", "AliasMoved", "DatasetRegistered"} <= set(types)

    only_b = [json.loads(line) for line in ok(hub("events", "--json", "--aggregate", "model/b")).splitlines()]
    assert only_b and {e["aggregate"] for e in only_b} == {"model/b"}

    datasets = [json.loads(x) for x in ok(hub("events", "--json", "--type", "DatasetRegistered")).splitlines()]
    assert [e["type"] for e in datasets] == ["DatasetRegistered"]

    after_first = ok(hub("events", "--json", "--after", str(positions[0]), "--limit", "1")).splitlines()
    assert [int(json.loads(x)["position"]) for x in after_first] == [positions[1]]

    table = ok(hub("events"))
    assert "ModelRegistered" in table and "model/a" in table
