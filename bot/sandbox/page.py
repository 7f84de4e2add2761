"""The sandbox web page: static files served next to the Slack emulator's control routes."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"

# Only these files are served: a fixed list keeps path tricks (`..`, symlinks) out entirely.
_CONTENT_TYPES = {
    "index.html": "text/html",
    "sandbox.js": "text/javascript",
    "sandbox.css": "text/css",
}


# The page loads nothing from elsewhere; this keeps it that way even if a bug renders markup.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def _file_response(name: str) -> web.Response:
    content_type = _CONTENT_TYPES.get(name)
    if content_type is None:
        raise web.HTTPNotFound()
    try:
        body = (STATIC_DIR / name).read_bytes()
    except FileNotFoundError:
        raise web.HTTPNotFound() from None
    # no-cache: the page changes with the package and must never be served stale after an upgrade.
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8",
        headers={
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": _CSP,
        },
    )


async def _index(request: web.Request) -> web.Response:
    return _file_response("index.html")


async def _static(request: web.Request) -> web.Response:
    return _file_response(request.match_info["name"])


def add_page_routes(app: web.Application) -> None:
    """Serve the sandbox page at GET / and its assets at GET /static/{name}."""
    app.router.add_get("/", _index)
    app.router.add_get("/static/{name}", _static)
