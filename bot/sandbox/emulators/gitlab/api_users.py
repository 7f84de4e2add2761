"""Users: search by e-mail or name, by exact username, or by id."""

from __future__ import annotations

from aiohttp import web

from . import shapes
from .http import invalid, not_found, page_of, read_params, text_param
from .state import STATE

API = "/api/v4"


async def list_users(request: web.Request) -> web.Response:
    """`?username=` matches one account exactly; `?search=` parts of names or a whole e-mail."""
    state = request.app[STATE]
    params = await read_params(request)
    username = text_param(params, "username")
    search = text_param(params, "search")
    if username is not None:
        found = state.user_named(username)
        users = [found] if found is not None else []
    else:
        users = state.search_users(search or "")
    if text_param(params, "active") == "true":
        users = [u for u in users if u.state == "active"]
    if text_param(params, "humans") == "true":
        users = [u for u in users if not u.bot]
    # GitLab lists users newest first unless asked otherwise.
    users.sort(key=lambda u: u.id, reverse=text_param(params, "sort") != "asc")
    base = state.public_url(request)
    return page_of(request, [shapes.user(u, base) for u in users])


async def get_user(request: web.Request) -> web.Response:
    state = request.app[STATE]
    raw = request.match_info["id"]
    if not raw.isdigit():
        raise invalid("id is invalid")
    user = state.user(int(raw))
    if user is None:
        raise not_found("User")
    return web.json_response(shapes.user_detail(user, state.public_url(request)))


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{API}/users", list_users)
    app.router.add_get(f"{API}/users/{{id}}", get_user)
