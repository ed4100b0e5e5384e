"""`python -m bench [--events N] [--rebuild-events N] [--quick]`: one JSON document on stdout, logs on stderr."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import sys
from collections.abc import Iterator

from bench import appends, harness, latency, rebuild, replay
from bench.timing import Stopwatch

log = logging.getLogger("bench")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--events", type=int, help="CreateModel calls per append figure (default 500, quick 40)")
    parser.add_argument(
        "--seed-events", type=int, help="events seeded for the replay figure (default 6500: the log's size while the appends figure wrote its 1,500 into it; quick 1000)"
    )
    parser.add_argument(
        "--rebuild-events", type=int,
        help="events seeded for the read-model rebuild figure (default 20000, quick 2000; its target is set for 200000)",
    )
    parser.add_argument("--calls", type=int, help="GetModel calls per latency figure (default 500, quick 200)")
    parser.add_argument("--threads", type=int, default=4, help="client threads of the concurrent append figure")
    parser.add_argument("--clients", type=int, default=latency.CONCURRENT_CLIENTS,
                        help="concurrent callers of the unary throughput figure (default 64)")
    parser.add_argument("--quick", action="store_true", help="small sizes: finishes in well under a minute")
    args = parser.parse_args(argv)
    args.events = args.events or (40 if args.quick else 500)
    args.seed_events = args.seed_events or (1000 if args.quick else 6500)
    args.rebuild_events = args.rebuild_events or (2000 if args.quick else 20000)
    args.calls = args.calls or (200 if args.quick else 500)
    for name in ("events", "seed_events", "rebuild_events", "calls", "threads", "clients"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


@contextlib.contextmanager
def stdout_for_json_only() -> Iterator[int]:
    """Point fd 1 at stderr while measuring (servers and libraries may print); yield the real stdout."""
    sys.stdout.flush()
    real = os.dup(1)
    os.dup2(2, 1)
    try:
        yield real
    finally:
        sys.stdout.flush()
        os.dup2(real, 1)
        os.close(real)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    with stdout_for_json_only(), Stopwatch() as total, harness.started() as stack:
        result = {
            "benchmark": "mlx-hub registry + gateway",
            "options": {"events": args.events, "seed_events": args.seed_events, "calls": args.calls,
                        "threads": args.threads, "clients": args.clients, "quick": args.quick, "rebuild_events": args.rebuild_events},
            "environment": {"python": platform.python_version(), "postgres": stack.server_version(),
                            "cpus": os.cpu_count(), "platform": platform.platform(),
                            "load_average_1m": round(os.getloadavg()[0], 2)},
            "appends": appends.measure_registry_process(args.events, args.threads),
            "replay": replay.measure(stack, args.seed_events, repeats=2 if args.quick else 3,
                                     follows=20 if args.quick else 100),
            "latency": latency.measure(stack, args.calls),
            "throughput": latency.throughput(stack, args.clients, rounds=2 if args.quick else 3,
                                             seconds=2.0 if args.quick else 3.0),
            "rebuild": rebuild.measure(stack, args.rebuild_events, rounds=2 if args.quick else 3),
        }  # fmt: skip
    result["wall_s"] = round(total.seconds, 2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
