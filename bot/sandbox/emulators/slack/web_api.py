"""`/api/{method}`: Slack's Web API over HTTP, as slack_sdk's clients call it.

slack_sdk sends some methods as JSON (chat.postMessage, views.open), others as a form or a
GET query (users.info), with the token as a Bearer header or a `token` field; all are accepted.
The app-level token (`xapp-`) works only for `apps.connections.open`, and only as a header.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from . import api_chat, api_conversations, api_directory, api_views, socket_mode
from .api_result import ApiResult, Call, fail, rate_limited
from .models import JSON, RecordedCall
from .ratelimit import Scope

if TYPE_CHECKING:
    from .emulator import SlackEmulator

Method = Callable[["SlackEmulator", Call], ApiResult]

METHODS: dict[str, Method] = {
    "auth.test": api_directory.auth_test,
    "chat.postMessage": api_chat.post_message,
    "chat.update": api_chat.update,
    "chat.delete": api_chat.delete,
    "chat.postEphemeral": api_chat.post_ephemeral,
    "chat.getPermalink": api_chat.get_permalink,
    "views.open": api_views.open_,
    "views.update": api_views.update,
    "views.push": api_views.push,
    "reactions.add": api_chat.add_reaction,
    "users.info": api_directory.users_info,
    "users.lookupByEmail": api_directory.users_lookup_by_email,
    "usergroups.users.list": api_directory.usergroup_members,
    "conversations.info": api_directory.conversation_info,
    "conversations.history": api_conversations.history,
    "conversations.replies": api_conversations.replies,
}

# Form posts carry these as JSON strings; JSON bodies carry them as they are.
_JSON_FIELDS = {
    "blocks": "invalid_blocks_format",
    "attachments": "invalid_attachments",
    "view": "invalid_arguments",
    "metadata": "invalid_metadata_format",
}


async def read_args(request: web.Request) -> tuple[JSON, str | None]:
    """A call's arguments from query, JSON or form body: (args, Slack's error or None)."""
    args: JSON = dict(request.query)
    if request.method == "POST" and request.body_exists:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            args.update({k: v for k, v in form.items() if isinstance(v, str)})
        else:
            raw = await request.read()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                return args, "invalid_charset"
            if request.content_type == "application/json":
                try:
                    parsed: Any = json.loads(text or "{}")
                except ValueError:
                    return args, "invalid_json"
                if not isinstance(parsed, dict):
                    return args, "json_not_object"
                args.update(parsed)
            else:
                args.update(parse_qsl(text, keep_blank_values=True))
    for name, error in _JSON_FIELDS.items():
        value = args.get(name)
        if isinstance(value, str):
            try:
                args[name] = json.loads(value) if value else None
            except ValueError:
                return args, error
    return args, None


def _token(request: web.Request, args: JSON) -> tuple[str | None, bool]:
    """The call's token and whether it came as a Bearer header (not a form/query field)."""
    form_token = args.pop("token", None)
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        bearer = header[7:].strip() or None
        return bearer, bearer is not None
    return (form_token if isinstance(form_token, str) and form_token else None), False


def _arrive(emu: SlackEmulator, method: str, args: JSON) -> tuple[Scope, int] | None:
    """Note the call's arrival for the early-call record; a 429 window's answer if one holds."""
    if method not in METHODS:
        return None
    # chat.postMessage is limited per channel as well as per method.
    channel = emu.resolve_channel(args.get("channel")) if method == "chat.postMessage" else None
    return emu.limits.arrive(method, channel)


def make_handler(emu: SlackEmulator) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler for `/api/{method}`; it records every call in emu.calls."""

    async def handle(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args, parse_error = await read_args(request)
        window = _arrive(emu, method, args)
        await emu.hold(method)
        token, in_header = _token(request, args)
        base_url = emu.base_url or f"{request.scheme}://{request.host}"
        if token is None:
            result = fail("not_authed")
        elif method == "apps.connections.open":
            # Slack takes the app-level token for this method only in the header.
            result = (
                socket_mode.connections_open(emu, token, base_url)
                if in_header
                else fail("not_authed")
            )
        elif token == emu.app_token:
            result = fail("not_allowed_token_type")
        elif token != emu.bot_token:
            result = fail("invalid_auth")
        elif parse_error is not None:
            result = fail(parse_error)
        elif method not in METHODS:
            result = fail("unknown_method")
        elif window is not None:
            emu.limits.announce(*window)
            result = rate_limited(window[1])
        else:
            result = METHODS[method](emu, Call(args=args, base_url=base_url))
        emu.calls.append(
            RecordedCall(
                method=method,
                args=args,
                ok=bool(result.body.get("ok")),
                error=result.error,
                status=result.status,
                at=time.time(),
                response=result.body,
            )
        )
        return web.json_response(result.body, status=result.status, headers=result.headers)

    return handle
