"""What every request goes through: recording, delay and failure switches, token check."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Middleware

from .http import ApiError, read_body
from .models import RecordedRequest
from .web_pages import is_web_path

if TYPE_CHECKING:
    from .emulator import GitLabEmulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_SECRET_HEADERS = {"private-token", "authorization", "job-token"}


def _token(request: web.Request) -> str | None:
    """GitLab's ways to pass a personal access token: header, Bearer, or `private_token=`."""
    header = request.headers.get("PRIVATE-TOKEN")
    if header:
        return header
    authorization = request.headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return request.query.get("private_token") or None


async def _record(emu: GitLabEmulator, request: web.Request) -> RecordedRequest:
    try:
        body = await read_body(request)
    except ApiError:
        body = {}
    recorded = RecordedRequest(
        method=request.method,
        path=request.rel_url.raw_path,
        query={k: v for k, v in request.query.items() if k != "private_token"},
        body=body or None,
        at=time.time(),
        headers={k: v for k, v in request.headers.items() if k.lower() not in _SECRET_HEADERS},
    )
    emu.requests.append(recorded)
    return recorded


async def _hold(emu: GitLabEmulator, request: web.Request, *, after_handling: bool) -> None:
    """Waits as the delay and hold switches say, re-reading them so a test can release a held
    request. Delays apply before the work; holds before or after it, as each says."""
    method, raw_path, path = request.method, request.rel_url.raw_path, request.path
    switches = emu.switches

    def seconds() -> float:
        held = switches.hold_for(method, raw_path, path, after_handling=after_handling)
        return held if after_handling else max(switches.delay_for(raw_path, path), held)

    started = time.monotonic()
    while not emu.closing:
        remaining = seconds() - (time.monotonic() - started)
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, 0.02))


def make_middleware(emu: GitLabEmulator) -> Middleware:
    """The one middleware: records the request, then delays, fails or checks the token."""

    @web.middleware
    async def gitlab_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        recorded = await _record(emu, request)
        raw_path = request.rel_url.raw_path
        response = await _answer(emu, request, handler, raw_path)
        recorded.status = response.status
        return response

    return gitlab_middleware


async def _answer(
    emu: GitLabEmulator, request: web.Request, handler: Handler, raw_path: str
) -> web.StreamResponse:
    await _hold(emu, request, after_handling=False)
    failure = emu.switches.failure_for(request.method, raw_path, request.path)
    if failure is not None and not failure.after_handling:
        return failure.response()
    # Web pages are public, as a public project's are; the API wants the token.
    if is_web_path(request.path) and request.method in ("GET", "HEAD"):
        return await _handle(request, handler)
    if _token(request) != emu.token:
        return web.json_response({"message": "401 Unauthorized"}, status=401)
    answer = await _handle(request, handler)
    await _hold(emu, request, after_handling=True)
    return failure.response() if failure is not None else answer


async def _handle(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return e.response()
    except web.HTTPMethodNotAllowed:
        return web.json_response({"error": "405 Method Not Allowed"}, status=405)
    except web.HTTPNotFound:
        return web.json_response({"error": "404 Not Found"}, status=404)
