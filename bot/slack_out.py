"""The one way the bot talks to Slack's Web API.

It keeps Slack's rules so that callers need not: a per-channel message budget shared by every
replica through Redis (about one message a second per channel, short bursts allowed), 429 answers
honoured with their Retry-After (and the pause shared with the other replicas), and message
updates coalesced so that only the newest state of a message is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.errors import IntegrationError
from bot.metrics import Metrics
from bot.store import Store

if TYPE_CHECKING:
    from bot.jobs import JobContext, JobQueue, JobRegistry

log = logging.getLogger(__name__)

MAX_429_RETRIES = 5
FLUSH_JOB = "slack.flush_update"
# Slack's one-message-a-second-per-channel limit is for posting; edits (chat.update, Tier 3)
# are kept few by coalescing instead, and a 429 on them is honoured like any other.
_BUDGETED = frozenset({"chat.postMessage"})
# Inside a job, a message whose channel slot is further away than this is not waited for:
# the job is run again later (arq Retry) so that it does not hold a worker while it waits.
JOB_MAX_BUDGET_WAIT = 2.0
_in_job: contextvars.ContextVar[bool] = contextvars.ContextVar("opsloop_in_job", default=False)


class ChannelBusy(Exception):
    """The channel's budget has no slot soon; run the job again in `wait` seconds."""

    def __init__(self, channel: str, wait: float) -> None:
        super().__init__(f"channel {channel} has no message slot for {wait:.1f}s")
        self.wait = wait


@contextlib.contextmanager
def job_context() -> Iterator[None]:
    """Mark the code inside as a job's: long budget waits become ChannelBusy."""
    token = _in_job.set(True)
    try:
        yield
    finally:
        _in_job.reset(token)


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
        *,
        channel_rate: float = 1.0,
        channel_burst: int = 3,
    ) -> None:
        self.client = client
        self.store = store
        self.metrics = metrics
        self.channel_rate = channel_rate
        self.channel_burst = channel_burst
        self._queue: JobQueue | None = None

    def attach_queue(self, queue: JobQueue) -> None:
        """Coalesced updates are flushed by a job; the queue is wired after construction."""
        self._queue = queue

    async def call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """Call a Web API method, waiting for the channel budget and honouring 429s."""
        channel = kwargs.get("channel") if method in _BUDGETED else None
        for attempt in range(MAX_429_RETRIES + 1):
            if isinstance(channel, str):
                limit = JOB_MAX_BUDGET_WAIT if _in_job.get() else None
                wait = await self.store.reserve_channel_slot(
                    channel, self.channel_rate, self.channel_burst, limit
                )
                if wait < 0:
                    raise ChannelBusy(channel, -wait)
                self.metrics.slack_budget_wait.observe(wait)
                if wait > 0:
                    await asyncio.sleep(wait)
            try:
                response = await self.client.api_call(method, json=kwargs)
            except SlackApiError as e:
                if e.response.status_code == 429 and attempt < MAX_429_RETRIES:
                    await self._honour_429(method, channel, _retry_after(e))
                    continue
                self.metrics.slack_calls.labels(method, "error").inc()
                error = e.response.get("error", "unknown_error")
                raise IntegrationError("Slack", f"{method} failed: {error}") from e
            except (TimeoutError, OSError) as e:
                self.metrics.slack_calls.labels(method, "unreachable").inc()
                raise IntegrationError(
                    "Slack", f"{method}: Slack is unreachable", retryable=True
                ) from e
            self.metrics.slack_calls.labels(method, "ok").inc()
            return dict(response.data) if isinstance(response.data, dict) else {}
        raise AssertionError("unreachable")  # pragma: no cover

    async def _honour_429(self, method: str, channel: str | None, seconds: float) -> None:
        self.metrics.slack_calls.labels(method, "rate_limited").inc()
        self.metrics.slack_rate_limited.labels(method).inc()
        log.info("Slack said 429 to %s; waiting %.1fs", method, seconds)
        if channel is not None:
            await self.store.push_back_channel(
                channel, seconds, self.channel_rate, self.channel_burst
            )
        else:
            await asyncio.sleep(seconds)

    async def post_message(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        metadata: dict[str, Any] | None = None,
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
        data = await self.call("chat.postMessage", **args)
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
        if await self.store.set_pending_update(channel, ts, payload):
            if self._queue is None:
                raise RuntimeError("SlackOut.request_update needs attach_queue() first")
            await self._queue.enqueue(FLUSH_JOB, {"channel": channel, "ts": ts})

    async def flush_update(self, channel: str, ts: str) -> int:
        """Send the newest pending state of a message until none is newer; return sends."""
        sent = 0
        while (pending := await self.store.get_pending_update(channel, ts)) is not None:
            try:
                await self.update_message(
                    channel, ts, pending.payload["text"], pending.payload.get("blocks")
                )
            except IntegrationError:
                await self.store.drop_pending_update(channel, ts)
                raise
            sent += 1
            if await self.store.finish_pending_update(channel, ts, pending.version):
                break
        return sent


async def _flush_job(job: JobContext, payload: dict[str, Any]) -> None:
    await job.deps.slack.flush_update(payload["channel"], payload["ts"])


def register_jobs(registry: JobRegistry) -> None:
    registry.add(FLUSH_JOB, _flush_job)
