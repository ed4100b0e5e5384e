"""The CLI starts without loading what only servers need."""

from __future__ import annotations

import subprocess
import sys


def test_the_cli_never_loads_the_database_driver_or_the_event_store():
    probe = "import sys, mlxhub.cli; print(sorted(m for m in ('psycopg', 'eventsourcing') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
