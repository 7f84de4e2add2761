"""Projects by numeric id or URL-encoded path, and their members."""

from __future__ import annotations

from aiohttp import web

from . import shapes
from .http import page_of, read_params, text_param
from .models import MAINTAINER
from .state import STATE

API = "/api/v4"


async def get_project(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    return web.json_response(shapes.project(project, state.public_url(request)))


async def list_members(request: web.Request) -> web.Response:
    """`/members/all`: direct and inherited members; the token's own account as Maintainer."""
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    params = await read_params(request)
    query = (text_param(params, "query") or "").lower()
    base = state.public_url(request)
    members = []
    for name in project.members:
        user = state.user_named(name)
        if user is not None and (query in user.username.lower() or query in user.name.lower()):
            members.append(shapes.member(user, base))
    if not query or query in state.token_user.username.lower():
        members.append(shapes.member(state.token_user, base, MAINTAINER))
    return page_of(request, members)


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{API}/projects/{{id}}", get_project)
    app.router.add_get(f"{API}/projects/{{id}}/members/all", list_members)
