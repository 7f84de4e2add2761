"""The delivery figures: lead times measured when rollouts complete, `/ops dora`, and the
weekly digest posted once per week across every replica.

The digest is a chain of deferred jobs, one per slot (the week's `feedback.digest_at`, UTC),
each with the slot in its job id, so replicas that schedule it all at once queue one job.
Every worker start schedules the current slot (when it passed less than CATCH_UP ago and was
not posted) and the next; each digest job, once posted, schedules the one after it. Posting
is claimed in Redis (SET NX) and posted with the Slack once mechanism (bot/slack_once.py), so
a run that dies after posting does not post again.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

from arq.worker import Retry

from bot.builds.router import system_for
from bot.config_file import WEEKDAYS
from bot.config_types import Service
from bot.deps import Deps
from bot.errors import IntegrationError, UserError
from bot.feedback import replies
from bot.feedback.dora import Figures, Period, figures
from bot.feedback.history import LeadTime, RolloutRecord
from bot.feedback.ports import Changes, RefMissing
from bot.replies import Reply
from bot.slack_once import post_once

log = logging.getLogger(__name__)

SCHEDULE_JOB = "feedback.digest_schedule"
DIGEST_JOB = "feedback.digest"
DAY = 86_400.0
WEEK = 7 * DAY
MAX_DAYS = 365
CATCH_UP = DAY  # a slot missed (every worker down) is still posted this long after it
LEAD_TRIES = 3  # GitLab unavailable: asked again this often before "not measured"


def last_slot(digest_at: str, now: float) -> float:
    """The latest moment at or before `now` that is `digest_at` ("mon 09:00", UTC)."""
    day, _, clock = digest_at.partition(" ")
    weekday = next(i for i, w in enumerate(WEEKDAYS) if day in (w, w[:3]))
    hours, _, minutes = clock.partition(":")
    moment = datetime.fromtimestamp(now, UTC)
    slot = moment.replace(hour=int(hours), minute=int(minutes), second=0, microsecond=0)
    slot -= timedelta(days=(moment.weekday() - weekday) % 7)
    if slot.timestamp() > now:
        slot -= timedelta(days=7)
    return slot.timestamp()


def slot_name(slot: float) -> str:
    return datetime.fromtimestamp(slot, UTC).strftime("%Y-%m-%dT%H:%MZ")


class FeedbackService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.history = deps.store.history

    # -- lead time, once per completed rollout ---------------------------------------------

    async def measure_lead_time(self, service: str, rollout_id: str, attempt: int = 1) -> None:
        """Measure and store a completed rollout's lead time, or why it cannot be (a job)."""
        if await self.history.lead(service, rollout_id) is not None:
            return
        record = await self.history.rollout(service, rollout_id)
        if record is None or record.completed_at is None:
            return
        try:
            lead = await self._measure(record)
        except IntegrationError as e:
            if e.retryable and attempt < LEAD_TRIES:
                raise Retry(defer=30 * attempt) from e
            lead = self._unmeasured(record, f"{e.system} did not answer the compare: {e.message}")
        await self.history.save_lead(service, lead)

    def _project(self, name: str, service: Service) -> str | None:
        """The code's project: the service's own (`project`, a GitLab deployer's), or the
        `projects:` entry named like the service."""
        own = getattr(service, "project", None)
        if isinstance(own, str) and own:
            return own
        entry = self.deps.config.projects.get(name)
        path = getattr(entry, "gitlab", None) if entry is not None else None
        return path if isinstance(path, str) and path else None

    def _unmeasured(self, r: RolloutRecord, reason: str, project: str | None = None) -> LeadTime:
        service = self.deps.config.services.get(r.service)
        kind = service.deployer if service is not None else None
        return LeadTime(id=r.id, seconds=None, project=project, kind=kind, reason=reason)

    async def _measure(self, r: RolloutRecord) -> LeadTime:
        service = self.deps.config.services.get(r.service)
        if service is None:
            return self._unmeasured(r, "the service is no longer in the YAML")
        if r.gate:
            return self._unmeasured(r, "Flagger names the revision by a checksum, not a version")
        if r.previous is None:
            return self._unmeasured(r, "a first deploy: no earlier version to compare with")
        project = self._project(r.service, service)
        if project is None:
            return self._unmeasured(r, f"no project is known for {r.service}")
        code = system_for(self.deps.ci, project)
        if not isinstance(code, Changes):
            return self._unmeasured(r, "no code host (GitLab) is configured", project)
        try:
            commits = await code.commits_between(project, r.previous, r.version)
        except RefMissing:
            why = f"no tag `{r.previous}` or `{r.version}` in {project}"
            return self._unmeasured(r, why, project)
        if not commits:
            why = f"no commits between `{r.previous}` and `{r.version}`"
            return self._unmeasured(r, why, project)
        oldest = min(c.committed_at.timestamp() for c in commits)
        assert r.completed_at is not None
        return LeadTime(
            id=r.id,
            seconds=max(r.completed_at - oldest, 0.0),
            commits=len(commits),
            oldest_commit_at=oldest,
            project=project,
            kind=service.deployer,
        )

    # -- the figures -----------------------------------------------------------------------

    async def figures(self, names: list[str], period: Period) -> dict[str, Figures]:
        window = self.deps.config.feedback.failure_window.total_seconds()
        # From a while before the period: a rollout started before it may end inside it.
        since = period.start - max(window, WEEK)
        found = {}
        for name in names:
            h = await self.history.since(name, since)
            found[name] = figures(h.rollouts, h.leads, h.incidents, period, window)
        return found

    def known(self, name: str | None) -> list[str]:
        services = sorted(self.deps.config.services)
        if name is None:
            return services
        if name in services:
            return [name]
        known = ", ".join(f"`{s}`" for s in services) or "none are configured"
        raise UserError(
            f"`{name}` is not a service (known: {known}).",
            "Type `/ops dora [service] [days]`, e.g. `/ops dora` or `/ops dora api 7`.",
        )

    async def dora(self, name: str | None, days: int) -> Reply:
        """`/ops dora [service] [days]`: ephemeral."""
        names = self.known(name)
        now = time.time()
        rows = await self.figures(names, Period(now - days * DAY, now))
        window = self.deps.config.feedback.failure_window
        return replies.dora_reply(rows, days, window)

    # -- the weekly digest -----------------------------------------------------------------

    async def schedule_digest(self) -> None:
        """On a worker's start: the slot that just passed (if not posted) and the next."""
        feedback = self.deps.config.feedback
        if feedback.digest_channel is None:
            return
        now = time.time()
        last = last_slot(feedback.digest_at, now)
        if now - last < CATCH_UP and not await self.history.digest_posted(slot_name(last)):
            await self._queue_digest(last)
        await self._queue_digest(last + WEEK)

    async def _queue_digest(self, slot: float) -> None:
        name = slot_name(slot)
        await self.deps.queue.enqueue(
            DIGEST_JOB, {"slot": slot}, job_id=f"{DIGEST_JOB}:{name}", run_at=slot
        )

    async def post_digest(self, slot: float) -> None:
        """Post slot `slot`'s digest once, then schedule the next (a job)."""
        channel = self.deps.config.feedback.digest_channel
        name = slot_name(slot)
        if channel is None:
            return
        if not await self.history.digest_posted(name):
            if not await self.history.claim_digest(name, uuid.uuid4().hex):
                raise Retry(defer=30)  # another run is posting it; look again after it
            names = self.known(None)
            this = await self.figures(names, Period(slot - WEEK, slot))
            before = await self.figures(names, Period(slot - 2 * WEEK, slot - WEEK))
            reply = replies.digest_message(this, before, slot)
            await post_once(
                self.deps.slack,
                f"{DIGEST_JOB}:{name}",
                channel,
                reply.text,
                reply.blocks,
                settle_after=self.deps.settings.settle_seconds,
            )
            await self.history.digest_done(name)
        await self._queue_digest(slot + WEEK)
