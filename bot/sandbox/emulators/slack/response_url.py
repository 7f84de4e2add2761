"""`/response/{token}`: the response_url Slack hands out with commands and clicks.

Slack answers these with plain text ("ok", or the error name) rather than the Web API's JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .api_chat import add_ephemeral
from .api_result import ApiResult, as_bool, message_content
from .lookup import with_generated_ids
from .models import JSON, Ephemeral, Message, RecordedCall
from .tokens import ResponseTarget

if TYPE_CHECKING:
    from .emulator import SlackEmulator


def _origin(emu: SlackEmulator, target: ResponseTarget) -> Message | Ephemeral | None:
    if target.message_ts is not None:
        return emu.find_message(target.channel, target.message_ts)
    if target.ephemeral_ts is not None:
        return emu.find_ephemeral(target.ephemeral_ts)
    return None


def apply_response(emu: SlackEmulator, target: ResponseTarget, body: JSON) -> tuple[int, str]:
    """Acts on a response_url post as Slack would: (HTTP status, answer text)."""
    origin = _origin(emu, target)
    if as_bool(body.get("delete_original")):
        if isinstance(origin, Message):
            emu.delete(origin)
        elif isinstance(origin, Ephemeral):
            emu.delete_ephemeral(origin)
        else:
            return 404, "message_not_found"
        return 200, "ok"
    content = message_content(body)
    if isinstance(content, ApiResult):
        return 400, content.error or "invalid_payload"
    if content.empty:
        return 400, "no_text"
    blocks = with_generated_ids(content.blocks or [])
    if as_bool(body.get("replace_original")) and origin is not None:
        emu.edit(
            origin, text=content.text or "", blocks=blocks, attachments=content.attachments or []
        )
        return 200, "ok"
    thread_ts = body.get("thread_ts") or target.thread_ts
    thread_ts = thread_ts if isinstance(thread_ts, str) else None
    if body.get("response_type") == "in_channel":
        parent = emu.find_message(target.channel, thread_ts) if thread_ts else None
        emu.post(
            target.channel,
            user=emu.bot_user_id,
            text=content.text or "",
            blocks=blocks,
            attachments=content.attachments,
            thread_ts=parent.ts if parent is not None else None,
        )
    else:
        add_ephemeral(emu, target.channel, target.user, content, thread_ts)
    return 200, "ok"


def make_handler(emu: SlackEmulator) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler for response_url posts; each post is recorded in emu.calls."""

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        await emu.hold("response_url")
        body: Any = None
        target, error = emu.tokens.use_response_target(request.match_info["token"])
        if target is None:
            status, answer = 404, error or "no_service"
        else:
            try:
                body = json.loads(raw.decode("utf-8"))
            except ValueError:
                body = None
            if not isinstance(body, dict):
                status, answer = 400, "invalid_payload"
            else:
                status, answer = apply_response(emu, target, body)
                if status == 200:
                    target.uses += 1
        emu.calls.append(
            RecordedCall(
                method="response_url",
                args=body if isinstance(body, dict) else {"raw": raw.decode("utf-8", "replace")},
                ok=status == 200,
                error=None if status == 200 else answer,
                status=status,
                at=time.time(),
                response=answer,
            )
        )
        return web.Response(status=status, text=answer)

    return handle
