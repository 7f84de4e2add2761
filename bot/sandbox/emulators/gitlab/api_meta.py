"""`GET /version` and `GET /user`: what a client asks first to prove its token works."""

from __future__ import annotations

from aiohttp import web

from . import shapes
from .state import STATE

API = "/api/v4"


async def version(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        {
            "version": state.version,
            "revision": "0opsloop",
            "kas": {"enabled": False, "externalUrl": None, "version": None},
            "enterprise": False,
        }
    )


async def current_user(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(shapes.current_user(state.token_user, state.public_url(request)))


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{API}/version", version)
    app.router.add_get(f"{API}/user", current_user)
