"""`/_emulator/...`: JSON routes the sandbox page uses to watch the workspace and act in it.

A person's actions go through the same SlackDriver the tests use, so the page exercises the
bot exactly as Slack would.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .driver import DriverResponse
from .snapshot import state_snapshot

if TYPE_CHECKING:
    from .emulator import SlackEmulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_WAIT_SECONDS = 60.0


class _BadRequest(Exception):
    """A control request the page got wrong; answered 400 with the reason."""


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _guarded(fn: Callable[[web.Request], Awaitable[web.Response]]) -> Handler:
    """Turns the page's mistakes into 4xx answers with a reason, never a 500."""

    async def handle(request: web.Request) -> web.Response:
        try:
            return await fn(request)
        except _BadRequest as e:
            return _error(400, str(e))
        except LookupError as e:
            return _error(404, str(e).strip("'\""))
        except ValueError as e:
            return _error(400, str(e))
        except RuntimeError as e:
            return _error(409, str(e))

    return handle


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except ValueError as e:
        raise _BadRequest(f"body is not JSON: {e}") from e
    if not isinstance(parsed, dict):
        raise _BadRequest("body must be a JSON object")
    return parsed


def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise _BadRequest(f"{key!r} must be a non-empty string")
    return value


def _answer(resp: DriverResponse | None) -> dict[str, Any]:
    if resp is None:
        return {"status": None, "answer": "", "note": None, "elapsed_ms": 0}
    return {
        "status": resp.status,
        "answer": resp.body,
        "note": resp.note,
        "elapsed_ms": round(resp.elapsed_ms, 1),
        # Only when Slack answered it itself (an unknown command): the app was never asked.
        **({"by_slack": True} if resp.by_slack else {}),
    }


def _shortcut_handler(emu: SlackEmulator) -> Callable[[web.Request], Awaitable[web.Response]]:
    """POST /_emulator/shortcut: a message shortcut chosen on a message."""

    async def shortcut(request: web.Request) -> web.Response:
        body = await _body(request)
        channel = _text(body, "channel") or ""
        message = emu.find_message(channel, _text(body, "message_ts") or "")
        if message is None:
            raise LookupError("no such message")
        resp = await emu.control_driver().message_shortcut(
            _text(body, "callback_id") or "",
            message,
            user=_text(body, "user", required=False),
        )
        return web.json_response(_answer(resp))

    return shortcut


def _session_handler(emu: SlackEmulator) -> Callable[[web.Request], Awaitable[web.Response]]:
    """POST /_emulator/session: the page (re)loaded; what the old session showed is gone."""

    async def session(request: web.Request) -> web.Response:
        emu.start_page_session()
        return web.json_response({"ok": True, "version": emu.version})

    return session


def _limit_handlers(
    emu: SlackEmulator,
) -> tuple[Callable[[web.Request], Awaitable[web.Response]], ...]:
    """POST /_emulator/rate_limits opens a 429 window; GET /_emulator/early_calls lists the calls
    that came before a Retry-After (for a bench in another process)."""

    async def open_window(request: web.Request) -> web.Response:
        body = await _body(request)
        seconds, retry_after = body.get("seconds"), body.get("retry_after")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise _BadRequest("'seconds' must be a number of seconds")
        if retry_after is not None and (
            isinstance(retry_after, bool) or not isinstance(retry_after, int)
        ):
            raise _BadRequest("'retry_after' must be a whole number of seconds")
        emu.limits.open_window(
            _text(body, "method") or "",
            float(seconds),
            channel=_text(body, "channel", required=False),
            retry_after=retry_after,
        )
        return web.json_response({"ok": True})

    async def early_calls(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "early": [c.to_json() for c in emu.limits.early_calls],
                "in_flight": [c.to_json() for c in emu.limits.in_flight_calls],
            }
        )

    return open_window, early_calls


def add_routes(app: web.Application, emu: SlackEmulator) -> None:
    """Mounts the control routes on the emulator's app."""

    async def state(request: web.Request) -> web.Response:
        return web.json_response(state_snapshot(emu))

    async def wait(request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "-1"))
            timeout = float(request.query.get("timeout", emu.long_poll_seconds))
        except ValueError as e:
            raise _BadRequest("since must be an integer and timeout a number") from e
        await emu.wait_for_change(since, max(0.0, min(timeout, MAX_WAIT_SECONDS)))
        return web.json_response(state_snapshot(emu))

    async def command(request: web.Request) -> web.Response:
        body = await _body(request)
        resp = await emu.control_driver().command(
            _text(body, "command") or "",
            str(body.get("text") or ""),
            user=_text(body, "user", required=False),
            channel=_text(body, "channel", required=False),
        )
        return web.json_response(_answer(resp))

    async def action(request: web.Request) -> web.Response:
        body = await _body(request)
        ephemeral_ts = _text(body, "ephemeral_ts", required=False)
        target: Any
        if ephemeral_ts is not None:
            target = emu.find_ephemeral(ephemeral_ts)
        else:
            channel = _text(body, "channel") or ""
            target = emu.find_message(channel, _text(body, "message_ts") or "")
        if target is None:
            raise LookupError("no such message")
        selection = {k: v for k, v in body.items() if k.startswith("selected_")}
        resp = await emu.control_driver().act(
            target,
            _text(body, "block_id") or "",
            _text(body, "action_id") or "",
            user=_text(body, "user", required=False),
            value=selection or body.get("value"),
        )
        return web.json_response(_answer(resp))

    async def view_submission(request: web.Request) -> web.Response:
        body = await _body(request)
        view_id = _text(body, "view_id") or ""
        values = body.get("values") or {}
        if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
            raise _BadRequest("values must map block_id to {action_id: value}")
        resp = await emu.control_driver().submit_view(
            view_id, values, user=_text(body, "user", required=False)
        )
        return web.json_response({**_answer(resp), "errors": emu.views[view_id].errors})

    async def view_close(request: web.Request) -> web.Response:
        body = await _body(request)
        resp = await emu.control_driver().close_view(
            _text(body, "view_id") or "", user=_text(body, "user", required=False)
        )
        return web.json_response(_answer(resp))

    async def calls(request: web.Request) -> web.Response:
        return web.json_response(
            [
                {
                    "method": c.method,
                    "args": c.args,
                    "ok": c.ok,
                    "error": c.error,
                    "status": c.status,
                }
                for c in emu.calls
            ],
            dumps=lambda obj: json.dumps(obj, default=str),
        )

    open_window, early_calls = _limit_handlers(emu)
    router = app.router
    router.add_post("/_emulator/rate_limits", _guarded(open_window))
    router.add_get("/_emulator/early_calls", _guarded(early_calls))
    router.add_get("/_emulator/state", _guarded(state))
    router.add_post("/_emulator/session", _guarded(_session_handler(emu)))
    router.add_get("/_emulator/wait", _guarded(wait))
    router.add_get("/_emulator/calls", _guarded(calls))
    router.add_post("/_emulator/command", _guarded(command))
    router.add_post("/_emulator/action", _guarded(action))
    router.add_post("/_emulator/shortcut", _guarded(_shortcut_handler(emu)))
    router.add_post("/_emulator/view_submission", _guarded(view_submission))
    router.add_post("/_emulator/view_close", _guarded(view_close))
