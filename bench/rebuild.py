"""Seconds to rebuild the registry's read model from its event log (what `python -m registry_svc
rebuild-read-model` runs) against a raw psycopg SELECT of the same rows, on a schema of its own
seeded with a working registry's mix of events (bench/seeding.py); the same for the trainer's
read model (`python -m trainer_svc rebuild-read-model`, bench/training_seeding.py).

Rounds alternate the raw read and the rebuild (and, with `python_replay`, the rebuild that replays
the log through the read model's Python `apply_batch`, the path before the database folded it);
the figures are medians. The command itself, a fresh process, is timed once more at the end (its
interpreter start and imports included). Target: at most 5x the raw read, and at most 10 s for
200,000 events.

`python -m bench.rebuild [--events 200000] [--python-replay registry,trainer]` measures this alone
and prints its JSON document.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment
from psycopg import sql

from bench import seeding, training_seeding
from bench.harness import Stack
from bench.timing import Stopwatch
from mlxhub.config import load_settings
from mlxhub.eventstore import connect, ensure_schema, postgres_env
from mlxhub.read_model import rebuild
from registry_svc.application import RegistryApplication
from registry_svc.read_model import RegistryProjection, RegistryReadModel
from trainer_svc.application import TrainerApplication
from trainer_svc.read_model import TrainerProjection, TrainerReadModel

log = logging.getLogger(__name__)

TARGET_RATIO = 5.0  # rebuild seconds / raw read seconds
TARGET_SECONDS = 10.0
TARGET_EVENTS = 200_000  # the size TARGET_SECONDS is set for


SERVICES = {  # service -> (application, read model, projection name, seeder, command module)
    "registry": (RegistryApplication, RegistryReadModel, RegistryProjection.name, seeding.seed, "registry_svc"),
    "trainer": (TrainerApplication, TrainerReadModel, TrainerProjection.name, training_seeding.seed, "trainer_svc"),
}  # fmt: skip


def raw_read(settings, events_table: str) -> int:
    query = sql.SQL(
        "SELECT originator_id, originator_version, topic, state, notification_id FROM {} ORDER BY notification_id"
    ).format(sql.Identifier(events_table))
    with connect(settings) as conn:
        return len(conn.execute(query).fetchall())


def command_seconds(env: dict[str, str], expected: int, module: str = "registry_svc") -> float:
    """`python -m <module> rebuild-read-model` as a process of its own, wall time."""
    with Stopwatch() as watch:
        done = subprocess.run([sys.executable, "-m", module, "rebuild-read-model"], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    if done.returncode != 0 or f"replayed {expected} events" not in done.stdout:
        raise RuntimeError(f"rebuild-read-model failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-2000:]}")
    return watch.seconds


def measure(stack: Stack, events: int, rounds: int = 3, service: str = "registry",
            python_replay: bool = False) -> dict[str, Any]:
    application, read_model, projection, seed, module = SERVICES[service]
    env = {**stack.env, "MLXHUB_DATABASE_SCHEMA": f"{stack.settings.database_schema}_rebuild_{service}"}
    settings = load_settings(env)
    ensure_schema(settings)
    app = application(postgres_env(settings))
    view = InfrastructureFactory.construct(Environment(projection, postgres_env(settings))).tracking_recorder(read_model)
    try:
        log.info("%s rebuild: seeding %d events", service, events)
        with Stopwatch() as seeding_watch:
            seeded = seed(app, events)
        log.info("%s rebuild: seeded in %.1fs", service, seeding_watch.seconds)
        raw_s, rebuild_s, python_s = [], [], []
        for _ in range(rounds):
            with Stopwatch() as watch:
                count = raw_read(settings, app.recorder.events_table_name)
            raw_s.append(watch.seconds)
            with Stopwatch() as watch:
                replayed = rebuild(app, view)
            rebuild_s.append(watch.seconds)
            if count != seeded or replayed != seeded:
                raise AssertionError(f"read {count} and rebuilt {replayed} events; {seeded} were seeded")
            if python_replay:
                with Stopwatch() as watch:
                    replayed = rebuild(app, view, in_database=False)
                python_s.append(watch.seconds)
                if replayed != seeded:
                    raise AssertionError(f"replayed {replayed} events in Python; {seeded} were seeded")
        stats = view.stats() if service == "registry" else view.query(
            "SELECT count(*) AS job_count, count(*) FILTER (WHERE state = 'SUCCEEDED') AS succeeded_count"
            " FROM trainer_jobs"
        )[0]
        command_s = command_seconds(env, seeded, module)
    finally:
        app.close()
        view.datastore.close()
        with stack.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(settings.database_schema)))
    raw, rebuilt = statistics.median(raw_s), statistics.median(rebuild_s)
    target_seconds = TARGET_SECONDS * seeded / TARGET_EVENTS
    log.info("%s rebuild: %d events in %.2fs, raw read %.2fs (%.1fx); the command took %.2fs",
             service, seeded, rebuilt, raw, rebuilt / raw, command_s)  # fmt: skip
    figures = {
        "events": seeded,
        "rounds": rounds,
        "read_model": stats,
        "rebuild_s": round(rebuilt, 6),
        "raw_read_s": round(raw, 6),
        "ratio": round(rebuilt / raw, 3),
        "target_ratio": TARGET_RATIO,
        "rebuild_events_per_s": round(seeded / rebuilt, 1),
        "command_s": round(command_s, 3),
        # 10 s is set for 200,000 events; other sizes get the same rate
        "target_s": round(target_seconds, 3),
        "target_met": rebuilt / raw <= TARGET_RATIO and rebuilt <= target_seconds,
    }
    if python_s:  # the same rebuild replayed through Python, measured in the same rounds
        replayed_s = statistics.median(python_s)
        log.info("%s rebuild replayed in Python: %.2fs (%.1fx the raw read)", service, replayed_s, replayed_s / raw)
        figures.update(python_replay_s=round(replayed_s, 6), python_replay_ratio=round(replayed_s / raw, 3),
                       speedup_over_python_replay=round(replayed_s / rebuilt, 3))
    return figures


def main(argv: list[str] | None = None) -> int:
    from bench import harness
    from bench.__main__ import stdout_for_json_only

    parser = argparse.ArgumentParser(prog="python -m bench.rebuild", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=TARGET_EVENTS, help="events seeded (default 200000)")
    parser.add_argument("--rounds", type=int, default=2, help="raw read + rebuild rounds (default 2)")
    parser.add_argument("--services", default="registry,trainer", help="read models measured (default registry,trainer)")
    parser.add_argument("--python-replay", default="", metavar="SERVICES",
                        help="services whose rebuild is also timed replaying the log in Python (default none)")
    args = parser.parse_args(argv)
    if args.events < 1 or args.rounds < 1:
        parser.error("--events and --rounds must be at least 1")
    services = args.services.split(",")
    if not services or set(services) - set(SERVICES):
        parser.error(f"--services takes a comma-separated subset of {', '.join(SERVICES)}")
    python_replay = set(filter(None, args.python_replay.split(",")))
    if python_replay - set(services):
        parser.error(f"--python-replay takes a comma-separated subset of the measured services ({args.services})")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with stdout_for_json_only(), Stopwatch() as total, harness.started() as stack:
        result = {"benchmark": "mlx-hub read-model rebuilds", "cpus": os.cpu_count(),
                  "load_average_1m": round(os.getloadavg()[0], 2)}
        for service in services:  # the registry's figure keeps its key, "rebuild", as in `python -m bench`
            key = "rebuild" if service == "registry" else f"{service}_rebuild"
            result[key] = measure(stack, args.events, args.rounds, service, python_replay=service in python_replay)
    result["wall_s"] = round(total.seconds, 2)
    result["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
