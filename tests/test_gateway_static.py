"""The dashboard as the gateway serves it, on the real gateway in front of the real registry:
hashed assets cached for good, client-side routes answered with index.html, no way out of the
dashboard directory, no API key needed for the app itself, and the API exactly as before."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

import gateway.static
from gateway.server import running
from mlxhub.config import load_settings
from registry_svc.server import RegistryServer

INDEX = '<!doctype html><html><head><script type="module" src="/assets/index-0a1b2c3d.js"></script></head>' \
        '<body><div id="root"></div></body></html>'
SCRIPT = "export const hub = 'mlx';\n" * 200  # big enough to be gzipped
ALICE = "alice-key"


@pytest.fixture
def dashboard(tmp_path: Path, monkeypatch) -> Path:
    """A built dashboard in a temporary directory, and a secret file beside it that must stay out of reach."""
    root = tmp_path / "dashboard"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-0a1b2c3d.js").write_text(SCRIPT)
    (root / "assets" / "index-0a1b2c3d.css").write_text("body{color:red}")
    (root / "favicon.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (tmp_path / "secret.txt").write_text("not for the web")
    monkeypatch.setattr(gateway.static, "DASHBOARD_DIR", root)
    return root


@pytest.fixture
def client(registry, settings, dashboard):
    with running(settings) as url, httpx.Client(base_url=url, timeout=15) as http:
        yield http


def raw_get(base_url: str, target: str) -> tuple[int, bytes]:
    """GET with the request target sent byte for byte (clients normalise `..` away)."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_assets_are_cached_for_good_and_gzipped(client):
    reply = client.get("/assets/index-0a1b2c3d.js", headers={"Accept-Encoding": "gzip"})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/javascript")
    assert reply.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert reply.headers["content-encoding"] == "gzip"
    assert reply.text == SCRIPT  # httpx decodes it
    plain = client.get("/assets/index-0a1b2c3d.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == SCRIPT.encode()
    assert client.get("/assets/index-0a1b2c3d.css").headers["content-type"].startswith("text/css")
    favicon = client.get("/favicon.svg")
    assert favicon.headers["content-type"].startswith("image/svg+xml") and favicon.headers["cache-control"] == "no-cache"
    assert client.head("/assets/index-0a1b2c3d.js").status_code == 200


def test_client_routes_get_index_html_and_missing_assets_404(client):
    for path in ("/", "/index.html", "/models/demo/versions/2", "/audit", "/training/jobs/abc?tab=logs"):
        reply = client.get(path)
        assert reply.status_code == 200, path
        assert reply.headers["content-type"].startswith("text/html"), path
        assert reply.headers["cache-control"] == "no-cache", path
        assert reply.text == INDEX, path
    etag = client.get("/").headers["etag"]
    assert client.get("/", headers={"If-None-Match": etag}).status_code == 304
    missing = client.get("/assets/index-ffffffff.js")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/json")
    assert "<html" not in missing.text
    metrics = client.get("/metrics").text  # one bounded label for every dashboard path
    assert 'mlxhub_http_requests_total{method="GET",route="dashboard",status="200"}' in metrics
    assert "/models/demo" not in metrics


def test_nothing_outside_the_dashboard_directory_is_reachable(client):
    base = str(client.base_url)
    for target in ("/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt",
                   "/..%2fsecret.txt", "/assets/..%2f..%2fsecret.txt", "/%2e%2e%2f%2e%2e%2fpyproject.toml",
                   "//etc/passwd", "/assets//etc/passwd", "/assets/..\\..\\secret.txt", "/assets/%00.js",
                   f"/{Path(gateway.static.DASHBOARD_DIR).parent / 'secret.txt'}"):
        status, body = raw_get(base, target)
        assert b"not for the web" not in body and b"root:" not in body, target
        assert status in (200, 400, 404), (target, status)
        if status == 200:  # a client route: the app, never a file
            assert body == INDEX.encode(), target


def test_the_api_is_not_shadowed(client):
    models = client.get("/v1/models")
    assert models.status_code == 200 and models.headers["content-type"].startswith("application/json")
    assert "models" in models.json() or models.json() == {}
    for path in ("/v1/nope", "/v1", "/v2/nothing", "/openai", "/healthz/x", "/health/nope"):
        nope = client.get(path)
        assert nope.status_code == 404, path
        assert nope.headers["content-type"].startswith("application/json") and "<html" not in nope.text, path
    assert client.get("/openai/v1/nope").json()["error"]  # the OpenAI error shape under /openai/v1
    assert client.get("/openapi.json").json()["openapi"].startswith("3.")
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.delete("/v1/models").status_code == 405
    for method in ("POST", "PUT", "DELETE"):  # only GET and HEAD reach the dashboard
        other = client.request(method, "/models/demo")
        assert other.status_code == 404 and other.json()["code"] == 5, method


def test_an_unbuilt_dashboard_says_how_to_build_it(registry, settings, tmp_path, monkeypatch):
    monkeypatch.setattr(gateway.static, "DASHBOARD_DIR", tmp_path / "never-built")
    with running(settings) as url, httpx.Client(base_url=url, timeout=15) as http:
        for path in ("/", "/models/demo"):
            page = http.get(path)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert "not built" in page.text and "make web" in page.text
        assert http.get("/assets/index-0a1b2c3d.js").status_code == 404
        assert http.get("/v1/models").status_code == 200


def test_the_app_needs_no_key_and_the_api_still_does(hub_env, dashboard):
    settings = load_settings({**hub_env, "MLXHUB_API_KEYS": f"alice={ALICE}"})
    server = RegistryServer(settings).start()
    try:
        with running(settings) as url, httpx.Client(base_url=url, timeout=15) as http:
            assert http.get("/").text == INDEX
            assert http.get("/models/demo").text == INDEX
            assert http.get("/assets/index-0a1b2c3d.js").text == SCRIPT
            assert http.get("/v1/models").status_code == 401
            assert http.get("/openapi.json").status_code == 401
            assert http.post("/models/demo").status_code == 401  # not the dashboard: the key is checked first, as before
            assert http.get("/v1/models", headers={"Authorization": f"Bearer {ALICE}"}).status_code == 200
    finally:
        server.stop(grace=1)
