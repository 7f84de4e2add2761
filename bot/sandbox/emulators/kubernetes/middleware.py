"""What every request goes through: recording, delays and failures, the bearer token."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from .errors import KubeError, method_not_allowed, path_not_found, unauthorized
from .models import RecordedRequest

if TYPE_CHECKING:
    from .emulator import KubernetesEmulator

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _token(request: web.Request) -> str | None:
    authorization = request.headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


async def _body(request: web.Request) -> Any:
    if not request.body_exists:
        return None
    raw = await request.read()
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


async def _record(emu: KubernetesEmulator, request: web.Request) -> RecordedRequest:
    recorded = RecordedRequest(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        content_type=request.content_type if request.body_exists else "",
        body=await _body(request),
        token_ok=_token(request) == emu.token,
        at=time.time(),
        headers={k: v for k, v in request.headers.items() if k.lower() != "authorization"},
    )
    emu.requests.append(recorded)
    if emu.max_requests and len(emu.requests) > 2 * emu.max_requests:
        del emu.requests[: -emu.max_requests]  # a long sandbox run keeps the latest only
    return recorded


async def _wait(emu: KubernetesEmulator, request: web.Request) -> None:
    """Delays and holds, re-read while waiting so a test can let a held request go."""
    started = time.monotonic()
    while not emu.closing:
        remaining = emu.switches.wait_for(request.method, request.path) - (
            time.monotonic() - started
        )
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, 0.02))


def make_middleware(emu: KubernetesEmulator) -> Middleware:
    @web.middleware
    async def kubernetes_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        recorded = await _record(emu, request)
        response = await _answer(emu, request, handler, recorded.token_ok)
        recorded.status = response.status
        return response

    return kubernetes_middleware


async def _answer(
    emu: KubernetesEmulator, request: web.Request, handler: Handler, token_ok: bool
) -> web.StreamResponse:
    await _wait(emu, request)
    failure = emu.switches.failure_for(request.method, request.path)
    if failure is not None:
        return failure.response()
    try:
        if not token_ok:
            raise unauthorized()
        return await handler(request)
    except KubeError as e:
        return e.response()
    except web.HTTPMethodNotAllowed as e:
        return method_not_allowed(e.method).response()
    except web.HTTPNotFound:
        return path_not_found(request.path).response()
    except (KeyError, TypeError, ValueError, AttributeError):
        # An emulator bug or an input it did not foresee: a Status, and the trace in the log.
        log.exception("the Kubernetes emulator failed on %s %s", request.method, request.path)
        return KubeError(500, "InternalError", "Internal error occurred: see the log").response()
