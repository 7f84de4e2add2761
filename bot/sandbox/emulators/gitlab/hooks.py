"""Project webhooks, and their delivery to a receiver (the bot) as GitLab sends them.

Each status change of a pipeline (or of a job, for hooks with `job_events`) becomes one
`HookEvent` per matching hook: its body is taken at the moment of the change, so a late delivery
carries the old status. A worker posts the events in order with GitLab's headers:

    Content-Type: application/json          User-Agent: GitLab/<version>
    X-Gitlab-Event: Pipeline Hook           X-Gitlab-Token: <the hook's secret token>
    X-Gitlab-Event-UUID: <uuid>             Idempotency-Key: <the same uuid>
    X-Gitlab-Webhook-UUID: <a new uuid for every attempt>
    X-Gitlab-Instance: <the emulator's URL>

The event's UUID and Idempotency-Key stay the same on every attempt and redelivery. A delivery
that fails (nothing listening, a time-out, 429 or 5xx) is tried again after a back-off, `retries`
times; a 4xx answer is not. Every attempt is recorded in `deliveries`.

Note: GitLab itself (15.x and later) does not repeat a failed delivery; it counts failures and
disables a hook for a while after four in a row. `retries = 0` behaves like that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import uuid4

import aiohttp

from . import ci_shapes
from .models import JSON
from .pipelines import JobRecord, PipelineRecord

if TYPE_CHECKING:
    from .state import GitLabState

log = logging.getLogger(__name__)

PIPELINE_HOOK = "Pipeline Hook"
JOB_HOOK = "Job Hook"


@dataclass
class HookRecord:
    """A project webhook; `token` is sent as `X-Gitlab-Token` and never shown by the API."""

    id: int
    project_id: int
    url: str
    token: str | None
    created_at: datetime
    pipeline_events: bool = True
    job_events: bool = False
    push_events: bool = True
    enable_ssl_verification: bool = True


@dataclass
class HookEvent:
    """One thing to tell one hook: GitLab's body, and the UUID every attempt carries."""

    uuid: str
    hook: HookRecord
    event: str  # "Pipeline Hook" | "Job Hook"
    body: JSON

    @property
    def status(self) -> str | None:
        """The pipeline's status (Pipeline Hook) or the job's (Job Hook) when it was made."""
        attributes = self.body.get("object_attributes")
        if isinstance(attributes, dict):
            return str(attributes.get("status"))
        value = self.body.get("build_status")
        return str(value) if value is not None else None


@dataclass
class HookDelivery:
    """One attempt to deliver an event; `status` is the receiver's answer, None without one."""

    uuid: str
    event: str
    url: str
    attempt: int  # 1 for the first attempt at this event, 2 for the next, ...
    webhook_uuid: str
    status: int | None
    error: str | None
    at: float  # time.time()
    object_status: str | None
    headers: dict[str, str] = field(default_factory=dict)  # as sent, without the token


@dataclass
class _Queued:
    due: float  # time.monotonic()
    seq: int
    event: HookEvent
    attempt: int = 1
    held: bool = False  # kept back until the hook's next event has gone (out-of-order mode)


class Webhooks:
    """The hooks of every project, the events waiting to go, and every attempt made."""

    def __init__(self, version: str, instance_url: Callable[[], str]) -> None:
        self.version = version
        self._instance_url = instance_url
        self.hooks: dict[int, HookRecord] = {}
        self.events: list[HookEvent] = []
        self.deliveries: list[HookDelivery] = []
        self.enabled = True  # False: status changes make no events at all
        self.out_of_order = False  # True: each event goes after the hook's next one
        self.hold_seconds = 2.0  # the longest an event is kept back in out-of-order mode
        self.retries = 3
        self.retry_seconds = 0.5  # the first back-off; it doubles for each further attempt
        self.timeout = 10.0  # GitLab's default webhook time-out
        self._queue: list[_Queued] = []
        self._seq = 0
        self._next_id = 1
        self._busy = 0
        self._wakeup: asyncio.Event | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- hooks ----------------------------------------------------------------------------

    def add(
        self,
        project_id: int,
        url: str,
        token: str | None,
        now: datetime,
        *,
        pipeline_events: bool = True,
        job_events: bool = False,
        push_events: bool = True,
        enable_ssl_verification: bool = True,
    ) -> HookRecord:
        hook = HookRecord(
            self._next_id,
            project_id,
            url,
            token or None,
            now,
            pipeline_events=pipeline_events,
            job_events=job_events,
            push_events=push_events,
            enable_ssl_verification=enable_ssl_verification,
        )
        self._next_id += 1
        self.hooks[hook.id] = hook
        return hook

    def of_project(self, project_id: int) -> list[HookRecord]:
        return [h for h in self.hooks.values() if h.project_id == project_id]

    # -- events ---------------------------------------------------------------------------

    def emit(self, hook: HookRecord, event: str, body: JSON) -> HookEvent | None:
        """Queues an event for a hook; None when webhooks are switched off."""
        if not self.enabled:
            return None
        made = HookEvent(str(uuid4()), hook, event, body)
        self.events.append(made)
        now = time.monotonic()
        held = next((q for q in self._queue if q.held and q.event.hook.id == hook.id), None)
        if held is not None:
            self._push(made, now)  # the newer event first, then the one kept back
            held.held, held.due, held.seq = False, now, self._next_seq()
        elif self.out_of_order:
            self._push(made, now + self.hold_seconds, held=True)
        else:
            self._push(made, now)
        return made

    async def redeliver(self, event: HookEvent) -> HookDelivery:
        """Sends a recorded event again now, with its UUID and body (no retries)."""
        return await self.send(event)

    async def settled(self, seconds: float = 10.0) -> None:
        """Waits until every queued event has been delivered or given up."""
        deadline = time.monotonic() + seconds
        while self._queue or self._busy:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self._queue)} webhook events still waiting")
            await asyncio.sleep(0.01)

    # -- delivery -------------------------------------------------------------------------

    async def run(self) -> None:
        """Delivers queued events, one at a time, for as long as the emulator serves."""
        self._wakeup = asyncio.Event()
        async with aiohttp.ClientSession() as session:
            self._session = session
            try:
                while True:
                    item = self._take_due()
                    if item is None:
                        await self._sleep()
                        continue
                    try:
                        await self._attempt(item)
                    except Exception:  # one broken delivery must not stop the others
                        log.exception("the emulated GitLab failed to deliver a webhook")
                    finally:
                        self._busy -= 1
            finally:
                self._session = None
                self._wakeup = None

    async def send(self, event: HookEvent, attempt: int | None = None) -> HookDelivery:
        """One POST of an event to its hook's URL, recorded whatever happens."""
        if attempt is None:
            attempt = 1 + sum(1 for d in self.deliveries if d.uuid == event.uuid)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"GitLab/{self.version}",
            "Idempotency-Key": event.uuid,
            "X-Gitlab-Event": event.event,
            "X-Gitlab-Webhook-UUID": str(uuid4()),
            "X-Gitlab-Instance": self._instance_url(),
            "X-Gitlab-Event-UUID": event.uuid,
        }
        if event.hook.token:
            headers["X-Gitlab-Token"] = event.hook.token
        status, error = await self._post(event.hook.url, json.dumps(event.body), headers)
        delivery = HookDelivery(
            uuid=event.uuid,
            event=event.event,
            url=event.hook.url,
            attempt=attempt,
            webhook_uuid=headers["X-Gitlab-Webhook-UUID"],
            status=status,
            error=error,
            at=time.time(),
            object_status=event.status,
            headers={k: v for k, v in headers.items() if k != "X-Gitlab-Token"},
        )
        self.deliveries.append(delivery)
        return delivery

    async def _post(
        self, url: str, body: str, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            if self._session is not None:
                return await _post_with(self._session, url, body, headers, timeout), None
            async with aiohttp.ClientSession() as session:
                return await _post_with(session, url, body, headers, timeout), None
        except TimeoutError:
            return None, "timed out"
        except aiohttp.ClientError as e:
            return None, f"{type(e).__name__}: {e}"

    async def _attempt(self, item: _Queued) -> None:
        delivery = await self.send(item.event, item.attempt)
        failed = delivery.status is None or delivery.status == 429 or delivery.status >= 500
        if failed and item.attempt <= self.retries:
            backoff = self.retry_seconds * 2.0 ** (item.attempt - 1)
            self._push(item.event, time.monotonic() + backoff, attempt=item.attempt + 1)

    def _push(self, event: HookEvent, due: float, *, attempt: int = 1, held: bool = False) -> None:
        self._queue.append(_Queued(due, self._next_seq(), event, attempt, held))
        if self._wakeup is not None:
            self._wakeup.set()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _take_due(self) -> _Queued | None:
        now = time.monotonic()
        due = [q for q in self._queue if q.due <= now]
        if not due:
            return None
        item = min(due, key=lambda q: q.seq)
        self._queue.remove(item)
        self._busy += 1
        return item

    async def _sleep(self) -> None:
        wakeup = self._wakeup
        assert wakeup is not None
        wakeup.clear()
        wait = min((q.due for q in self._queue), default=None)
        timeout = None if wait is None else max(0.0, wait - time.monotonic())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wakeup.wait(), timeout)


async def _post_with(
    session: aiohttp.ClientSession,
    url: str,
    body: str,
    headers: dict[str, str],
    limit: aiohttp.ClientTimeout,
) -> int:
    async with session.post(
        url, data=body, headers=headers, timeout=limit, allow_redirects=False
    ) as response:
        await response.read()
        return response.status


def ci_listener(state: GitLabState) -> Callable[[PipelineRecord, JobRecord | None], None]:
    """Turns the CI's status changes into Pipeline Hook and Job Hook events."""

    def changed(pipeline: PipelineRecord, job: JobRecord | None) -> None:
        hooks = state.webhooks
        wanted = [
            h
            for h in hooks.of_project(pipeline.project_id)
            if (h.job_events if job is not None else h.pipeline_events)
        ]
        if not wanted or not hooks.enabled:
            return
        project = state.find_project(pipeline.project_id)
        head = state.repos.of(project).commits.get(pipeline.sha)
        base, now = state.public_url(), state.clock()
        if job is None:
            body = ci_shapes.pipeline_hook(pipeline, project, state.user, head, base, now)
        else:
            body = ci_shapes.job_hook(job, pipeline, project, state.user, head, base, now)
        for hook in wanted:
            hooks.emit(hook, JOB_HOOK if job is not None else PIPELINE_HOOK, body)

    return changed
