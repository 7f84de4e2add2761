"""Project webhooks: `GET|POST /projects/:id/hooks`, `GET|DELETE /projects/:id/hooks/:hook_id`."""

from __future__ import annotations

from aiohttp import web

from . import ci_shapes
from .hooks import HookRecord
from .http import ApiError, invalid, page_of, read_params, text_param
from .models import JSON
from .state import STATE, GitLabState

API = "/api/v4"


def _flag(params: JSON, name: str, default: bool) -> bool:
    value = text_param(params, name)
    if value is None:
        return default
    if value.lower() not in ("true", "false", "1", "0"):
        raise invalid(f"{name} is invalid")
    return value.lower() in ("true", "1")


def _hook(request: web.Request) -> tuple[GitLabState, HookRecord]:
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    raw = request.match_info["hook_id"]
    hook = state.webhooks.hooks.get(int(raw)) if raw.isdigit() else None
    if hook is None or hook.project_id != project.id:
        raise ApiError(404, {"message": "404 Not found"})
    return state, hook


async def list_hooks(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    base = state.public_url(request)
    hooks = state.webhooks.of_project(project.id)
    return page_of(request, [ci_shapes.project_hook(h, base) for h in hooks])


async def add_hook(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    params = await read_params(request)
    url = text_param(params, "url")
    if not url:
        raise invalid("url is missing")
    if not url.startswith(("http://", "https://")):
        raise ApiError(
            422, {"message": {"url": ["is blocked: Only allowed schemes are http, https"]}}
        )
    hook = state.webhooks.add(
        project.id,
        url,
        text_param(params, "token"),
        state.clock(),
        pipeline_events=_flag(params, "pipeline_events", False),
        job_events=_flag(params, "job_events", False),
        push_events=_flag(params, "push_events", True),
        enable_ssl_verification=_flag(params, "enable_ssl_verification", True),
    )
    body = ci_shapes.project_hook(hook, state.public_url(request))
    return web.json_response(body, status=201)


async def get_hook(request: web.Request) -> web.Response:
    state, hook = _hook(request)
    return web.json_response(ci_shapes.project_hook(hook, state.public_url(request)))


async def delete_hook(request: web.Request) -> web.Response:
    state, hook = _hook(request)
    del state.webhooks.hooks[hook.id]
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    hooks = f"{API}/projects/{{id}}/hooks"
    app.router.add_get(hooks, list_hooks)
    app.router.add_post(hooks, add_hook)
    app.router.add_get(f"{hooks}/{{hook_id}}", get_hook)
    app.router.add_delete(f"{hooks}/{{hook_id}}", delete_hook)
