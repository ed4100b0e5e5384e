"""The dashboard: the built web app (`make web` writes it to gateway/dashboard/) served at `/`.

Only GET and HEAD on paths outside the API reach it; everything else goes on to the
transcoding route, so the API answers exactly as it would without a dashboard. It needs
no API key: the app has to load before it can ask for one. Files under /assets/ carry a
content hash in their names and are cached for good; any other path that names no file is
a client-side route and gets index.html, which browsers must revalidate.
"""

from __future__ import annotations

import html
import mimetypes
import os
import re
from collections.abc import Iterable
from pathlib import Path

import grpc
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import GatewayError

DASHBOARD_DIR = Path(__file__).parent / "dashboard"
ASSETS = "/assets/"
IMMUTABLE = "public, max-age=31536000, immutable"
# Paths the dashboard never answers, besides the first segment of every transcoding route.
RESERVED = ("/openai", "/healthz", "/readyz", "/metrics", "/openapi.json", "/health")
BUILD_COMMAND = "make web"

# Types the platform's table may lack or get wrong.
for _type, _suffix in (("text/javascript", ".js"), ("text/javascript", ".mjs"), ("text/css", ".css"),
                       ("image/svg+xml", ".svg"), ("font/woff2", ".woff2"), ("application/manifest+json",
                                                                              ".webmanifest")):
    mimetypes.add_type(_type, _suffix)

NOT_BUILT = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MLX Hub</title></head>
<body><main><h1>MLX Hub</h1>
<p>The dashboard is not built. Build it with <code>{html.escape(BUILD_COMMAND)}</code> and reload this page.
The API is served as usual under <code>/v1/</code> (see <a href="/openapi.json">/openapi.json</a>).</p>
</main></body></html>
"""


def api_prefixes(templates: Iterable[str]) -> tuple[str, ...]:
    """`RESERVED` plus `/<first segment>` of every route template (`/v1/models` -> `/v1`)."""
    firsts = {"/" + t.lstrip("/").split("/", 1)[0].split(":", 1)[0] for t in templates}
    return tuple(sorted(set(RESERVED) | firsts))


_VERSIONED = re.compile(r"/v\d+(?:[/:].*)?")


def under(path: str, prefixes: tuple[str, ...]) -> bool:
    """Whether `path` belongs to the API: under one of `prefixes`, or under any `/v<N>` (an API
    version the gateway does not serve answers the API's 404, not the dashboard)."""
    return any(path == p or path.startswith(p + "/") for p in prefixes) or bool(_VERSIONED.fullmatch(path))


def resolve(root: Path, path: str) -> Path | None:
    """The file `path` (decoded, from the URL) names inside `root`; None when it names none or
    would leave `root` (`..`, a backslash, a NUL, a link pointing out)."""
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") or "\\" in p or "\x00" in p for p in parts):
        return None
    try:
        base = root.resolve()
        candidate = base.joinpath(*parts).resolve()
    except (OSError, ValueError):
        return None
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate


def _not_modified(request: Request, response: Response) -> bool:
    etag = response.headers.get("etag")
    given = request.headers.get("if-none-match", "")
    return bool(etag) and etag in [tag.strip() for tag in given.split(",")]


class Dashboard:
    """ASGI app for GET/HEAD outside the API; `directory` is read on every request, so a rebuild
    shows up without restarting the gateway."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = self.respond(request)
        await response(scope, receive, send)

    def respond(self, request: Request) -> Response:
        path = request.url.path
        index = self.directory / "index.html"
        found = resolve(self.directory, path)
        if path.startswith(ASSETS):
            if found is None:
                raise GatewayError(grpc.StatusCode.NOT_FOUND, f"no dashboard asset {path}")
            return self._file(request, found, IMMUTABLE)
        if found is not None and found.name != "index.html":
            return self._file(request, found, "no-cache")
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, headers={"Cache-Control": "no-cache"})
        return self._file(request, index, "no-cache")

    def _file(self, request: Request, file: Path, cache: str) -> Response:
        media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if media_type.startswith("text/") or media_type in ("application/json", "image/svg+xml"):
            media_type += "; charset=utf-8"
        response = FileResponse(file, media_type=media_type, headers={"Cache-Control": cache},
                                stat_result=os.stat(file))
        if _not_modified(request, response):
            keep = {k: v for k, v in response.headers.items() if k in ("etag", "cache-control", "last-modified")}
            return Response(status_code=304, headers=keep)
        return response


def dashboard_app(directory: Path | None = None) -> ASGIApp:
    """The dashboard, gzipped for clients that accept it (only these responses: API streams stay unbuffered)."""
    return GZipMiddleware(Dashboard(directory or DASHBOARD_DIR), minimum_size=512)
