"""chat.* and reactions.add: posting, editing and deleting messages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .api_result import (
    ApiResult,
    Call,
    Content,
    as_bool,
    fail,
    message_content,
    ok,
    rate_limited,
)
from .lookup import with_generated_ids
from .models import Ephemeral, Message

if TYPE_CHECKING:
    from .emulator import SlackEmulator


def _channel(emu: SlackEmulator, call: Call) -> str | ApiResult:
    channel = emu.resolve_channel(call.args.get("channel"))
    return channel if channel is not None else fail("channel_not_found")


def post_message(emu: SlackEmulator, call: Call) -> ApiResult:
    """chat.postMessage: a message (or thread reply) from the bot; limited per channel."""
    channel = _channel(emu, call)
    if isinstance(channel, ApiResult):
        return channel
    retry_after = emu.rate_limiter.take(channel)
    if retry_after is not None:
        emu.limits.announce(("chat.postMessage", channel), retry_after)
        return rate_limited(retry_after)
    content = message_content(call.args)
    if isinstance(content, ApiResult):
        return content
    if content.empty:
        return fail("no_text")
    thread_ts = call.str_arg("thread_ts")
    if thread_ts is not None:
        parent = emu.find_message(channel, thread_ts)
        if parent is None or parent.thread_ts not in (None, parent.ts):
            return fail("thread_not_found")
    msg = emu.post(
        channel,
        user=emu.bot_user_id,
        text=content.text or "",
        blocks=with_generated_ids(content.blocks or []),
        attachments=content.attachments,
        thread_ts=thread_ts,
        broadcast=thread_ts is not None and as_bool(call.args.get("reply_broadcast")),
        metadata=call.args.get("metadata") if isinstance(call.args.get("metadata"), dict) else None,
    )
    return ok(channel=channel, ts=msg.ts, message=msg.to_slack())


def _own_message(emu: SlackEmulator, call: Call, not_ours: str) -> tuple[str, Message] | ApiResult:
    """The bot's message named by `channel` and `ts`, or Slack's error for why not."""
    channel = _channel(emu, call)
    if isinstance(channel, ApiResult):
        return channel
    msg = emu.find_message(channel, call.str_arg("ts") or "")
    if msg is None:
        return fail("message_not_found")
    if msg.user != emu.bot_user_id:
        return fail(not_ours)
    return channel, msg


def update(emu: SlackEmulator, call: Call) -> ApiResult:
    """chat.update: edits a bot message; left-out text, blocks or attachments are kept."""
    found = _own_message(emu, call, "cant_update_message")
    if isinstance(found, ApiResult):
        return found
    channel, msg = found
    content = message_content(call.args)
    if isinstance(content, ApiResult):
        return content
    if content.text is None and content.blocks is None and content.attachments is None:
        return fail("no_text")
    emu.edit(
        msg,
        text=content.text if content.text is not None else msg.text,
        blocks=with_generated_ids(content.blocks) if content.blocks is not None else msg.blocks,
        attachments=content.attachments if content.attachments is not None else msg.attachments,
    )
    return ok(channel=channel, ts=msg.ts, text=msg.text, message=msg.to_slack())


def delete(emu: SlackEmulator, call: Call) -> ApiResult:
    """chat.delete: removes a bot message."""
    found = _own_message(emu, call, "cant_delete_message")
    if isinstance(found, ApiResult):
        return found
    channel, msg = found
    emu.delete(msg)
    return ok(channel=channel, ts=msg.ts)


def post_ephemeral(emu: SlackEmulator, call: Call) -> ApiResult:
    """chat.postEphemeral: a message only `user` sees in the channel."""
    channel = _channel(emu, call)
    if isinstance(channel, ApiResult):
        return channel
    user = call.str_arg("user")
    if user is None or user not in emu.users:
        return fail("user_not_in_channel")
    content = message_content(call.args)
    if isinstance(content, ApiResult):
        return content
    if content.empty:
        return fail("no_text")
    eph = add_ephemeral(emu, channel, user, content, call.str_arg("thread_ts"))
    return ok(message_ts=eph.ts)


def add_ephemeral(
    emu: SlackEmulator, channel: str, user: str, content: Content, thread_ts: str | None
) -> Ephemeral:
    """Adds an ephemeral from already validated content (shared with response_url)."""
    return emu.add_ephemeral(
        channel,
        user,
        text=content.text or "",
        blocks=with_generated_ids(content.blocks or []),
        attachments=content.attachments,
        thread_ts=thread_ts,
    )


def get_permalink(emu: SlackEmulator, call: Call) -> ApiResult:
    """chat.getPermalink: a link to a message, with thread_ts/cid for a thread reply."""
    channel = _channel(emu, call)
    if isinstance(channel, ApiResult):
        return channel
    msg = emu.find_message(channel, call.str_arg("message_ts") or "")
    if msg is None:
        return fail("message_not_found")
    link = f"{call.base_url}/archives/{channel}/p{msg.ts.replace('.', '')}"
    if msg.thread_ts and msg.thread_ts != msg.ts:
        link += f"?thread_ts={msg.thread_ts}&cid={channel}"
    return ok(channel=channel, permalink=link)


def add_reaction(emu: SlackEmulator, call: Call) -> ApiResult:
    """reactions.add: the bot reacts to a message with an emoji name."""
    name = call.str_arg("name")
    timestamp = call.str_arg("timestamp")
    if name is None or timestamp is None:
        return fail("no_item_specified")
    channel = _channel(emu, call)
    if isinstance(channel, ApiResult):
        return channel
    msg = emu.find_message(channel, timestamp)
    if msg is None:
        return fail("message_not_found")
    name = name.strip(":")
    users = msg.reactions.setdefault(name, [])
    if emu.bot_user_id in users:
        return fail("already_reacted")
    users.append(emu.bot_user_id)
    emu.changed()
    return ok()
