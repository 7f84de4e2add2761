"""Posting a message exactly once, however often the job that posts it runs.

Slack's chat.postMessage has no idempotency key, so the message carries the request's marker
in its metadata (`event_type: opsloop_request`), and a re-run that finds an intent without an
effect in the ledger reads the channel back (conversations.history, or conversations.replies
for a thread reply) for a message with that marker before posting (bot/once.py).

Reading back needs the `channels:history` (and for private channels `groups:history`) scope
and the bot in the channel. Where Slack refuses the read, the message cannot be found: after
`settle_after` it is posted again, the one case in which a crash can still cost a second
message.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.errors import IntegrationError, OutcomeUnknown
from bot.once import Effect, Intend, make_once, marker
from bot.slack_out import PostedMessage, SlackOut

log = logging.getLogger(__name__)

EVENT_TYPE = "opsloop_request"
# Slack answers within its own time-outs: a post without an answer cannot still be under way
# after this long, so a re-run need not wait GitLab's longer settle time before posting again.
SLACK_SETTLE_SECONDS = 30.0
_PAGES = 3  # pages of 200 messages looked through; a request's message is among the newest


async def post_once(
    slack: SlackOut,
    key: str,
    channel: str,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
    *,
    thread_ts: str | None = None,
    settle_after: float,
) -> PostedMessage:
    """Post the message of request `key` (a top-level message, or a reply under `thread_ts`)
    unless an earlier run posted it; either way, return where it is."""
    word = marker(key)

    async def make(intend: Intend) -> PostedMessage:
        try:
            return await slack.post_message(
                channel,
                text,
                blocks,
                thread_ts=thread_ts,
                metadata={"event_type": EVENT_TYPE, "event_payload": {"request": word}},
                before_send=intend,  # after the wait for Slack's budget, which posts nothing
            )
        except IntegrationError as e:
            if e.retryable:  # sent, and no answer: Slack may have posted it
                raise OutcomeUnknown("Slack", e.message) from e
            raise

    async def find(since: float) -> PostedMessage | None:
        return await find_posted(slack, channel, word, since, thread_ts=thread_ts)

    async def restore(done: dict[str, Any]) -> PostedMessage:
        return PostedMessage(channel=str(done["channel"]), ts=str(done["ts"]))

    return await make_once(
        slack.store.effects,
        f"{key}:message",
        Effect(
            system="Slack",
            what="its message was posted",
            check=f"<#{channel}>",
            make=make,
            find=find,
            record=lambda m: {"channel": m.channel, "ts": m.ts},
            restore=restore,
        ),
        settle_after=min(settle_after, SLACK_SETTLE_SECONDS),
    )


async def find_posted(
    slack: SlackOut, channel: str, word: str, since: float, *, thread_ts: str | None = None
) -> PostedMessage | None:
    """The bot's message carrying `word` in its metadata, posted at or after `since`; None when
    there is none, or Slack does not let the bot read the channel back."""
    method = "conversations.replies" if thread_ts else "conversations.history"
    args: dict[str, Any] = {
        "channel": channel,
        "oldest": f"{since - 60:.6f}",  # Slack's clock and ours differ a little
        "include_all_metadata": True,
        "limit": 200,
    }
    if thread_ts:
        args["ts"] = thread_ts
    for _ in range(_PAGES):
        try:
            data = await slack.call(method, **args)
        except IntegrationError as e:
            if e.retryable:
                raise
            # missing_scope, not_in_channel...: the bot cannot read it back; say so once here.
            log.warning("cannot look for an earlier message in %s: %s", channel, e.message)
            return None
        for message in data.get("messages") or []:
            if _carries(message, word) and message.get("ts") != thread_ts:
                return PostedMessage(channel=channel, ts=str(message["ts"]))
        cursor = (data.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
        args["cursor"] = cursor
    return None


def _carries(message: object, word: str) -> bool:
    """Whether a message from conversations.history carries the request's marker."""
    meta = message.get("metadata") if isinstance(message, dict) else None
    if not isinstance(meta, dict) or meta.get("event_type") != EVENT_TYPE:
        return False
    payload = meta.get("event_payload")
    return isinstance(payload, dict) and payload.get("request") == word
