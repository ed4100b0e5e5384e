"""Proto tooling: lint with buf, check breaking changes, generate the Python stubs.

One generator (grpcio-tools' protoc) writes `mlxhub/v1/*_pb2*.py`; `check`
regenerates into a temporary tree and fails on any difference, so committed
stubs can never drift from the protos.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import google.api.annotations_pb2

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_PACKAGE = Path("mlxhub") / "v1"
GOOGLEAPIS_SRC = Path(google.api.annotations_pb2.__file__).resolve().parent.parent
GOOGLEAPIS_COPY = ROOT / ".build" / "googleapis"


def sync_googleapis() -> Path:
    """Copy google/api and google/rpc protos from the wheel where buf can see them."""
    for sub in ("api", "rpc"):
        dest = GOOGLEAPIS_COPY / "google" / sub
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for proto in (GOOGLEAPIS_SRC / sub).glob("*.proto"):
            shutil.copy2(proto, dest / proto.name)
    return GOOGLEAPIS_COPY


def buf(*args: str, cwd: Path = ROOT) -> None:
    sync_googleapis()
    subprocess.run([str(Path(sys.executable).parent / "buf"), *args], cwd=cwd, check=True)


def breaking(ref: str) -> None:
    """buf breaking against a git ref, checked out in a temporary worktree that gets
    the same googleapis copy (it is not in git, so buf's `.git#branch=` input lacks it)."""
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(baseline), ref], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            shutil.copytree(sync_googleapis(), baseline / ".build" / "googleapis")
            buf("breaking", "--against", str(baseline))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, check=False)


def generate(out_root: Path) -> list[Path]:
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / "mlxhub" / "v1").glob("*.proto"))
    include_wkt = Path(protoc.__file__).resolve().parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{GOOGLEAPIS_SRC.parent}",
        f"-I{include_wkt}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted((out_root / OUT_PACKAGE).glob("*_pb2*.py*"))


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        fresh_names = {p.name for p in fresh}
        committed = {p.name for p in (ROOT / OUT_PACKAGE).glob("*_pb2*.py*")}
        stale = sorted(committed ^ fresh_names)
        stale += [p.name for p in fresh if p.name in committed and not filecmp.cmp(p, ROOT / OUT_PACKAGE / p.name, shallow=False)]
    if stale:
        print("generated stubs are out of date: " + ", ".join(stale) + " (run `make protos`)", file=sys.stderr)
        return 1
    print("generated stubs are current")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["generate", "check", "lint", "breaking"])
    parser.add_argument("--against", default="main", help="git ref that buf breaking compares with")
    args = parser.parse_args()
    if args.command == "generate":
        for path in generate(ROOT):
            print(path.relative_to(ROOT))
        return 0
    if args.command == "check":
        return check()
    if args.command == "lint":
        buf("lint")
        print("buf lint: ok")
        return 0
    breaking(args.against)
    print(f"buf breaking against {args.against}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
