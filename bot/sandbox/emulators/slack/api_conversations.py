"""conversations.history and conversations.replies: reading a channel or a thread back.

As Slack pages them: `limit` (default 100, at most 999) messages a page, newest first for a
channel and oldest first for a thread, `oldest`/`latest` bounds (exclusive unless `inclusive`),
a `next_cursor` while more remain. A message's `metadata` is included only with
`include_all_metadata`, as Slack does for metadata posted by other apps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .api_result import ApiResult, Call, as_bool, fail, ok
from .lookup import ts_key
from .models import JSON, Message

if TYPE_CHECKING:
    from .emulator import SlackEmulator


def history(emu: SlackEmulator, call: Call) -> ApiResult:
    """conversations.history: a channel's top-level messages, newest first."""
    channel = emu.resolve_channel(call.args.get("channel"))
    if channel is None:
        return fail("channel_not_found")
    newest_first = sorted(emu.messages(channel), key=lambda m: ts_key(m.ts), reverse=True)
    return _page(newest_first, call)


def replies(emu: SlackEmulator, call: Call) -> ApiResult:
    """conversations.replies: a thread's parent, then its replies, oldest first."""
    channel = emu.resolve_channel(call.args.get("channel"))
    if channel is None:
        return fail("channel_not_found")
    parent = emu.find_message(channel, call.str_arg("ts") or "")
    if parent is None:
        return fail("thread_not_found")
    return _page([parent, *parent.replies], call)


def _page(messages: list[Message], call: Call) -> ApiResult:
    try:
        limit = min(max(int(call.args.get("limit") or 100), 1), 999)
        start = int(call.str_arg("cursor") or 0)
    except (TypeError, ValueError):
        return fail("invalid_arguments")
    inclusive = as_bool(call.args.get("inclusive"))
    bounds = []
    for name in ("oldest", "latest"):
        raw = call.str_arg(name)
        try:
            bounds.append(ts_key(raw) if raw is not None else None)
        except ValueError:
            return fail(f"invalid_ts_{name}")
    oldest, latest = bounds
    chosen = [m for m in messages if _within(ts_key(m.ts), oldest, latest, inclusive)]
    page = chosen[start : start + limit]
    metadata = as_bool(call.args.get("include_all_metadata"))
    out: list[JSON] = [_shown(m, metadata) for m in page]
    more = start + limit < len(chosen)
    meta: dict[str, Any] = {"next_cursor": str(start + limit) if more else ""}
    return ok(messages=out, has_more=more, response_metadata=meta)


Ts = tuple[int, int]


def _within(key: Ts, oldest: Ts | None, latest: Ts | None, inclusive: bool) -> bool:
    if oldest is not None and (key < oldest or (key == oldest and not inclusive)):
        return False
    return latest is None or key < latest or (key == latest and inclusive)


def _shown(message: Message, metadata: bool) -> JSON:
    out = message.to_slack()
    if not metadata:
        out.pop("metadata", None)
    return out
