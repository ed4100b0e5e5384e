"""The dashboard's generated API client: `generate` rewrites it, `check` fails on drift.

The client's types come from the gateway's OpenAPI document, which the gateway
builds from the protos; so a proto change shows up here as drift until someone
runs `python tools/web.py generate` — the same rule as the proto stubs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
DOCUMENT = WEB / "openapi.json"
SCHEMA = WEB / "src" / "api" / "schema.d.ts"

sys.path.insert(0, str(ROOT))


def openapi_text() -> str:
    from gateway.openapi import openapi_document
    from gateway.routes import load_bindings

    document = openapi_document(load_bindings(), auth_enabled=True)
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def node_env() -> dict[str, str]:
    """PATH with a Node.js >= 20 first (tools/node.py finds or installs one)."""
    env = dict(os.environ)
    finder = ROOT / "tools" / "node.py"
    if finder.exists():
        bin_dir = subprocess.run([sys.executable, str(finder), "bin-dir"], check=True, capture_output=True,
                                 text=True).stdout.strip()
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env


def write(document: Path, schema: Path) -> None:
    document.write_text(openapi_text())
    tool = WEB / "node_modules" / ".bin" / "openapi-typescript"
    if not tool.exists():
        sys.exit(f"{tool} is missing; run `npm ci` in web/ (make web does)")
    subprocess.run([str(tool), str(document), "-o", str(schema)], check=True, cwd=WEB, env=node_env(),
                   stdout=subprocess.DEVNULL)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command == "generate":
        write(DOCUMENT, SCHEMA)
        print(f"wrote {DOCUMENT.relative_to(ROOT)} and {SCHEMA.relative_to(ROOT)}")
        return 0
    if command == "check":
        with tempfile.TemporaryDirectory() as scratch:
            document, schema = Path(scratch) / "openapi.json", Path(scratch) / "schema.d.ts"
            write(document, schema)
            stale = [str(path.relative_to(ROOT)) for path, fresh in ((DOCUMENT, document), (SCHEMA, schema))
                     if not path.exists() or path.read_bytes() != fresh.read_bytes()]
            if stale:
                print(f"generated dashboard client out of date: {', '.join(stale)}; "
                      "run `.venv/bin/python tools/web.py generate` and commit the result", file=sys.stderr)
                return 1
        print("dashboard API client is current")
        return 0
    print("usage: python tools/web.py generate|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
