"""Watch: a stream of `{"type": ..., "object": ...}` lines, as kube-apiserver sends them.

`resourceVersion=N` replays the events after N from the kept history (410 Gone, as an
ERROR event, when N is older than it); none, or 0, starts with every object as ADDED.
`allowWatchBookmarks=true` adds BOOKMARK events; `timeoutSeconds` ends the stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from aiohttp import web

from .errors import bad_request, status_object
from .models import JSON
from .requests import Target
from .state import emulator_of
from .store import Event

DEFAULT_TIMEOUT = 1800.0  # the real server's --min-request-timeout


def _line(kind: str, obj: JSON) -> bytes:
    return (json.dumps({"type": kind, "object": obj}) + "\n").encode()


async def stream(
    request: web.Request, target: Target, accepts: Callable[[JSON], bool]
) -> web.StreamResponse:
    emu = emulator_of(request)
    store = emu.store
    raw_since = request.query.get("resourceVersion", "") or "0"
    try:
        since = int(raw_since)
        timeout = float(request.query.get("timeoutSeconds", DEFAULT_TIMEOUT))
    except ValueError as e:
        raise bad_request(f"invalid watch parameter: {e}") from e
    bookmarks = request.query.get("allowWatchBookmarks", "").lower() in ("1", "true")
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    watcher = store.watch(target.resource, target.namespace, accepts, since)
    if watcher is None:
        message = f"too old resource version: {since} ({store.oldest_rv})"
        await response.write(_line("ERROR", status_object(410, "Expired", message)))
        return response
    deadline = time.monotonic() + timeout
    next_bookmark = time.monotonic() + emu.bookmark_seconds
    try:
        while not emu.closing:
            now = time.monotonic()
            if now >= deadline:
                break
            if bookmarks and now >= next_bookmark:
                await response.write(_line("BOOKMARK", _bookmark(target, store.rv)))
                next_bookmark = now + emu.bookmark_seconds
            # Short waits, so that a closing emulator ends its watches promptly.
            wait = min(deadline, next_bookmark if bookmarks else deadline, now + 0.25) - now
            try:
                event: Event = await asyncio.wait_for(watcher.queue.get(), max(wait, 0.01))
            except TimeoutError:
                continue
            await response.write(_line(event.type, event.object))
    except ConnectionResetError:
        pass  # the client went away
    finally:
        store.unwatch(watcher)
    return response


def _bookmark(target: Target, rv: int) -> JSON:
    return {
        "kind": target.resource.kind,
        "apiVersion": target.resource.api_version,
        "metadata": {"resourceVersion": str(rv)},
    }
