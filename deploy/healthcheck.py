"""Container health probe for MLX Hub services; exit 0 when healthy, 1 when not.

    python healthcheck.py grpc HOST:PORT [SERVICE]   grpc.health.v1 Check; healthy when SERVING
    python healthcheck.py http URL                   HTTP GET; healthy on a 2xx answer

Used by docker-compose health checks (and by the Kubernetes exec probe of the
gateway's /readyz). When the environment has a key (the services' own MLXHUB_SERVICE_KEY,
else MLXHUB_API_KEY, else the first key of MLXHUB_API_KEYS) it is sent as
`authorization: Bearer <key>`: the gateway's /readyz needs it; gRPC health checks are
open and ignore it.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 3.0
USAGE = "usage: healthcheck.py grpc HOST:PORT [SERVICE] | healthcheck.py http URL"


def api_key(env: dict[str, str]) -> str:
    for name in ("MLXHUB_SERVICE_KEY", "MLXHUB_API_KEY"):
        key = env.get(name, "").strip()
        if key:
            return key
    for item in env.get("MLXHUB_API_KEYS", "").split(","):
        item = item.strip()
        if item:
            return item.partition("=")[2] if "=" in item else item
    return ""


def check_grpc(address: str, service: str, key: str) -> tuple[bool, str]:
    from mlxhub import health  # imported here: an http check need not load gRPC

    answer = health.probe(address, service, TIMEOUT_S, health.bearer(key))
    return answer.serving, f"{address}: {answer}"


def check_http(url: str, key: str) -> tuple[bool, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return 200 <= response.status < 300, f"{url}: HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return False, f"{url}: HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        return False, f"{url}: {error}"


def main(argv: list[str], env: dict[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    if len(argv) >= 2 and argv[0] == "grpc" and len(argv) <= 3:
        healthy, message = check_grpc(argv[1], argv[2] if len(argv) == 3 else "", api_key(env))
    elif len(argv) == 2 and argv[0] == "http":
        healthy, message = check_http(argv[1], api_key(env))
    else:
        print(USAGE, file=sys.stderr)
        return 2
    print(("healthy " if healthy else "unhealthy ") + message)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
