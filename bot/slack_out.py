"""The one way the bot talks to Slack's Web API.

It keeps Slack's rules so that callers need not: a per-channel message budget shared by every
replica through Redis (about one message a second per channel, short bursts allowed); after a
429, no job on any replica calls that method again before its Retry-After (a pause in Redis,
checked before every call and again after any wait); and message updates coalesced so that only
the newest state of a message is sent, kept pending until Slack accepts it, by a job that
SlackOut puts on the queue it is given (the job itself is registered in bot.runtime).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import ClientError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.errors import IntegrationError
from bot.job_scope import ChannelBusy, in_job
from bot.metrics import Metrics
from bot.store import Store

log = logging.getLogger(__name__)

MAX_429_RETRIES = 5
FLUSH_JOB = "slack.flush_update"
# Slack's one-message-a-second-per-channel limit is for posting; edits (chat.update, Tier 3)
# are kept few by coalescing instead, and a 429 on them is honoured like any other.
_BUDGETED = frozenset({"chat.postMessage"})
# Inside a job, a call whose turn (a channel slot, or the end of a 429 pause) is further away
# than this is not waited for: the job is run again later (arq Retry) so that it does not hold a
# worker while it waits.
JOB_MAX_BUDGET_WAIT = 2.0
# A flush that finds Slack unreachable comes back after 2, 4, 8 ... seconds, at most this.
MAX_FLUSH_BACKOFF = 60.0
# Slack's own trouble, said with HTTP 200 and ok: false; worth trying again later.
_TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)


class FlushQueue(Protocol):
    """Where SlackOut puts the job (FLUSH_JOB) that sends a message's newest pending state."""

    async def enqueue(self, function: str, payload: dict[str, Any]) -> bool: ...


@dataclass(frozen=True)
class PostedMessage:
    channel: str
    ts: str


def _retry_after(e: SlackApiError) -> float:
    raw = e.response.headers.get("Retry-After") or e.response.headers.get("retry-after")
    try:
        return max(float(raw), 1.0) if raw is not None else 1.0
    except (TypeError, ValueError):
        return 1.0


class SlackOut:
    """Budgeted, 429-aware Slack Web API calls."""

    def __init__(
        self,
        client: AsyncWebClient,
        store: Store,
        metrics: Metrics,
        queue: FlushQueue,
        *,
        channel_rate: float = 1.0,
        channel_burst: int = 3,
    ) -> None:
        self.client = client
        self.store = store
        self.metrics = metrics
        self.channel_rate = channel_rate
        self.channel_burst = channel_burst
        self._queue = queue

    async def call(
        self,
        method: str,
        *,
        before_send: Callable[[], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Call a Web API method in its turn: after any 429 pause and, for posts, in a slot of
        the channel's budget. Inside a job a long wait raises ChannelBusy instead.
        `before_send` runs once the turn has come, right before each request goes out."""
        channel = kwargs.get("channel") if method in _BUDGETED else None
        channel = channel if isinstance(channel, str) else None
        refusals = 0
        while True:
            await self._wait_for_turn(method, channel)
            if before_send is not None:
                await before_send()
            try:
                response = await self.client.api_call(method, json=kwargs)
            except SlackApiError as e:
                status = e.response.status_code
                if status == 429:
                    refusals += 1
                    seconds = _retry_after(e)
                    await self._honour_429(method, channel, seconds)
                    if refusals <= MAX_429_RETRIES:
                        continue
                    if in_job():
                        raise ChannelBusy(method, seconds) from e
                error = e.response.get("error", "unknown_error")
                if status != 429:  # a 429 was counted as rate_limited above
                    self.metrics.slack_calls.labels(method, "error").inc()
                raise IntegrationError(
                    "Slack",
                    f"{method} failed: {error}",
                    retryable=status >= 500 or error in _TRANSIENT_ERRORS,
                ) from e
            except (TimeoutError, OSError, ClientError) as e:
                self.metrics.slack_calls.labels(method, "unreachable").inc()
                raise IntegrationError(
                    "Slack", f"{method}: Slack is unreachable", retryable=True
                ) from e
            self.metrics.slack_calls.labels(method, "ok").inc()
            return dict(response.data) if isinstance(response.data, dict) else {}

    async def _wait_for_turn(self, method: str, channel: str | None) -> None:
        """Return once `method` may be called: no 429 pause holds it, and a post has its slot."""
        limit = JOB_MAX_BUDGET_WAIT if in_job() else None
        while True:
            try:
                turn = await self.store.slack.take_turn(
                    method, channel, self.channel_rate, self.channel_burst, limit
                )
            except (RedisConnectionError, RedisTimeoutError, OSError):
                if channel is not None:
                    raise
                # Redis away: a call that has no budget goes on as it did before pauses were
                # shared (auth.test in /ops status still says whether Slack answers).
                log.debug("no shared Slack pause to check for %s", method)
                return
            if limit is not None and turn.wait > limit:
                raise ChannelBusy(channel or method, turn.wait)
            if channel is not None and turn.reserved:
                self.metrics.slack_budget_wait.observe(turn.wait)
            if turn.wait > 0:
                await asyncio.sleep(turn.wait)
            if not turn.reserved:
                continue  # paused: ask again now that the pause is over
            # Another call's 429 may have paused the method while this one waited for its slot:
            # the slot is void then, and the call takes its turn again after the pause.
            if turn.wait <= 0 or await self.store.slack.paused_for(method) <= 0:
                return

    async def _honour_429(self, method: str, channel: str | None, seconds: float) -> None:
        self.metrics.slack_calls.labels(method, "rate_limited").inc()
        self.metrics.slack_rate_limited.labels(method).inc()
        log.info("Slack said 429 to %s; every replica waits %.1fs", method, seconds)
        await self.store.slack.pause(
            method, seconds, channel=channel, rate=self.channel_rate, burst=self.channel_burst
        )

    async def post_message(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        metadata: dict[str, Any] | None = None,
        before_send: Callable[[], Awaitable[None]] | None = None,
    ) -> PostedMessage:
        """A message (or thread reply) in a channel; `metadata` is Slack's message metadata
        (`event_type`, `event_payload`), which conversations.history can give back."""
        args: dict[str, Any] = {"channel": channel, "text": text}
        if blocks is not None:
            args["blocks"] = blocks
        if metadata is not None:
            args["metadata"] = metadata
        if thread_ts:
            args["thread_ts"] = thread_ts
            if reply_broadcast:
                args["reply_broadcast"] = True
        data = await self.call("chat.postMessage", before_send=before_send, **args)
        return PostedMessage(channel=str(data.get("channel", channel)), ts=str(data["ts"]))

    async def update_message(
        self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        """Edit a message now; prefer `request_update` where updates can pile up."""
        args: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        if blocks is not None:
            args["blocks"] = blocks
        await self.call("chat.update", **args)

    async def post_ephemeral(
        self, channel: str, user: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        args: dict[str, Any] = {"channel": channel, "user": user, "text": text}
        if blocks is not None:
            args["blocks"] = blocks
        await self.call("chat.postEphemeral", **args)

    async def respond(
        self,
        response_url: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        in_channel: bool = False,
        replace_original: bool = False,
    ) -> None:
        """Answer a slash command or a click through its response_url."""
        webhook = AsyncWebhookClient(response_url, timeout=10)
        try:
            response = await webhook.send(
                text=text,
                blocks=blocks,
                response_type="in_channel" if in_channel else "ephemeral",
                replace_original=replace_original,
            )
        except (TimeoutError, OSError) as e:
            self.metrics.slack_calls.labels("response_url", "unreachable").inc()
            raise IntegrationError("Slack", "Slack is unreachable", retryable=True) from e
        outcome = "ok" if response.status_code < 300 else "error"
        self.metrics.slack_calls.labels("response_url", outcome).inc()
        if response.status_code >= 300:
            raise IntegrationError("Slack", f"response_url answered {response.status_code}")

    async def request_update(
        self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        """Ask for a message to show this state; pending updates coalesce, the newest wins."""
        payload = {"text": text, "blocks": blocks}
        if await self.store.slack.set_pending_update(channel, ts, payload):
            await self._queue.enqueue(FLUSH_JOB, {"channel": channel, "ts": ts})

    async def flush_update(
        self, channel: str, ts: str, *, owner: str | None = None, attempt: int = 1
    ) -> int:
        """Send the newest pending state of a message until none is newer; return sends.

        `owner` is the flush job's id: one flush at a time owns a message. While Slack is paused
        (429) or away, the state stays pending and ChannelBusy says when to come back; only a
        permanent refusal (message_not_found, msg_too_long...) drops it."""
        owner = owner or uuid.uuid4().hex
        pending_edits = self.store.slack
        sent = 0
        while (pending := await pending_edits.claim_pending_update(channel, ts, owner)) is not None:
            try:
                await self.update_message(
                    channel, ts, pending.payload["text"], pending.payload.get("blocks")
                )
                sent += 1
            except ChannelBusy as e:
                if await pending_edits.hold_pending_update(channel, ts, owner, e.wait):
                    raise
                return sent
            except IntegrationError as e:
                if e.retryable:
                    wait = min(2.0 ** min(attempt, 6), MAX_FLUSH_BACKOFF)
                    if await pending_edits.hold_pending_update(channel, ts, owner, wait):
                        raise ChannelBusy(f"chat.update {channel}", wait) from e
                    return sent
                log.warning("edit of message %s in %s dropped: %s", ts, channel, e.message)
                self.metrics.slack_edits_dropped.inc()
            if await pending_edits.finish_pending_update(channel, ts, owner, pending.version):
                break
        return sent
