"""What happens to deploys: start a rollout, count approvals, promote step by step, roll back.

Every decision is one atomic change of the service's rollout in Redis (bot/store/deploys.py),
judged by the pure rules in bot/deploys/rollout.py. The thread replies and audit entries a
decision causes are stored with it (the rollout's outbox) and sent afterwards, so a crash
between the two loses neither. Changing the engine is a durable job (`deploys.step`) run under
the service's lease; it converges on the recorded step, so running it again after a crash, or
on a restart (`reconcile`), finishes the work instead of repeating it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from bot.alerting.groups import AlertGroup
from bot.config_file import Service
from bot.deploys import alert_links, dashboard_marks, evidence, messages, rollout
from bot.deploys.changes import audit_entry, only, parse_button, reply_entry, without
from bot.deploys.ports import Deployer, Follows, HandsOver, OwnSteps, Snapshot, StartsOver
from bot.deploys.rollout import (
    AWAITING,
    BUSY,
    COMPLETE,
    FAILED,
    PROMOTING,
    ROLLED_BACK,
    Refused,
    Rollout,
    Stale,
    describe_state,
)
from bot.deps import Deps
from bot.errors import IntegrationError, UserError
from bot.feedback.history import LEAD_TIME_JOB
from bot.replies import Reply, counted
from bot.roles import holds
from bot.slack_once import post_once

log = logging.getLogger(__name__)

STEP_JOB = "deploys.step"
EXPIRE_JOB = "deploys.expire"
RECONCILE_JOB = "deploys.reconcile"
FOLLOW_JOB = "deploys.follow"
EVIDENCE_JOB = "deploys.evidence"
HANDLED_KEPT = 20  # decisions remembered per rollout; a job is retried long before 20 more

T = TypeVar("T")


def handed_over_key(service: str) -> str:
    """The effect-ledger key whose intent says who last handed a version of `service` over to
    its controller (`by`, `version`, and when: the intent's time)."""
    return f"deploys.handed_over:{service}"


class DeployService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.store = deps.store.deploys

    # -- configuration ------------------------------------------------------------------------

    def service(self, name: str) -> Service:
        services = self.deps.config.services
        if name in services:
            return services[name]
        known = ", ".join(sorted(services)) or "none are configured"
        raise UserError(
            f"`{name}` is not a service (known: {known}).",
            "Services are listed under `services:` in opsloop's YAML file.",
        )

    def deployer(self, name: str) -> Deployer:
        """The service's deployer, on the system this process is connected to."""
        return self.deps.deployers.make(
            name, self.service(name), self.deps.settings.deploy_step_timeout
        )

    def validate_version(self, name: str, version: str) -> None:
        """Refuse (UserError) a version the service's kind of deployer cannot run; for the ack,
        so nothing slow: no deployer is made. An unknown service, or one whose system is not
        configured, is the job's to refuse, which says so."""
        service = self.deps.config.services.get(name)
        self.deps.deployers.check_version(service.deployer if service else None, version)

    def approvers(self, service: Service) -> list[str]:
        return list(service.approvers or self.deps.config.roles.approvers)

    async def _require_deployer(self, user: str, what: str) -> None:
        if not await holds(self.deps, user, self.deps.config.roles.deployers):
            raise UserError(
                f"Only deployers (`roles.deployers`) may {what}.",
                "Ask a deployer, or ask whoever runs opsloop to add you.",
            )

    async def blocking_alerts(self, service: Service) -> list[str]:
        """Open alert groups with a firing, unacknowledged alert carrying `alert_labels`."""
        return _unacknowledged(await alert_links.open_alerts(self.deps, service))

    # -- starting -----------------------------------------------------------------------------

    async def start(
        self, name: str, version: str, *, user: str, channel: str, job_id: str
    ) -> Reply:
        service = self.service(name)  # the version was checked in the ack, and again below
        await self._require_deployer(user, "start a deploy")
        key = f"{job_id}:rollout"
        ledger = self.deps.store.effects
        entry = await ledger.load(key)
        done = (entry.effect or {}).get("id")
        if done is not None:  # this command ran before (a crash): finish what it began
            current = await self.store.load(name)
            if current is not None and current.id == done:
                await self._after_change(current)
                return self._started_reply(current)
        deployer = self.deployer(name)
        deployer.validate_version(version)
        if isinstance(deployer, HandsOver):  # a controller in the cluster runs the rollout
            return await self._hand_over(deployer, name, version, user=user, job_id=job_id)
        previous = await self.store.load(name)
        if previous is not None and previous.active:
            rollout.start(previous, previous)  # raises the one-rollout-at-a-time refusal
        running = await deployer.running_versions()
        stable, first = self._stable(running, previous)
        if stable == version and running is not None and set(running) == {version}:
            raise UserError(f"{name} already runs `{version}` everywhere; nothing to deploy.")
        now = time.time()
        percents = [s.percent for s in service.steps]
        if isinstance(deployer, OwnSteps):  # the system's own approval points (Argo's pauses)
            percents = await deployer.own_steps() or percents
        new = Rollout(
            # The id the first run chose, so that a re-run finds the message it posted.
            id=done or await self.store.new_id(),
            service=name,
            version=version,
            stable=stable,
            percents=percents,
            approvals_needed=service.approvals,
            started_by=user,
            channel=service.channel or channel,
            started_at=now,
            first=first,
        )
        if first:
            new.target = len(percents) - 1
        elif percents[0] >= 100:  # a single step: nothing runs the new version until approved
            new.state = AWAITING
            new.requested_at = now
            new.expires_at = now + self._timeout(service)
        await ledger.done(key, {"id": new.id})
        detail = {"stable": stable, "steps": percents, "channel": new.channel, "first": first}
        first_reply = messages.first_deploy_reply(new) if first else messages.requested_reply(new)
        new.outbox = [
            audit_entry(user, "deploy.requested", new.subject(), detail),
            reply_entry(first_reply),
        ]
        # The message goes out before the rollout is stored: a channel Slack refuses (the bot
        # not invited, a wrong ID) then stops the deploy before anything changes.
        text, blocks = await self.render(new)
        settle = self.deps.settings.settle_seconds
        posted = await post_once(
            self.deps.slack, key, new.channel, text, blocks, settle_after=settle
        )
        new.ts = posted.ts
        try:
            started, _ = await self.store.change(name, lambda cur: (rollout.start(cur, new), None))
        except Refused as e:  # another /deploy of the service won the race
            await self.deps.slack.update_message(
                new.channel, new.ts, f"Deploy {name} {version} was not started: {e.problem}"
            )
            raise
        await self._after_change(started)
        return self._started_reply(started)

    async def _hand_over(
        self, deployer: HandsOver, name: str, version: str, *, user: str, job_id: str
    ) -> Reply:
        """Hand `version` to the service's controller, once however often the job runs. Who
        asked is recorded first (the intent of `handed_over_key`): the controller may ask for
        approval as soon as it sees the change, and its next request is this person's, so
        they may not approve it (bot/deploys/flagger_gate.py). Withdrawn when nothing changed
        (a UserError, or a refusal such as 403 or 404); kept when the outcome is unknown (a
        time-out, the cluster unreachable: the change may have gone through)."""
        key = f"{job_id}:hand-over"
        ledger = self.deps.store.effects
        done = (await ledger.load(key)).effect
        if done is None:
            await ledger.intend(handed_over_key(name), {"by": user, "version": version})
            try:
                said = await deployer.hand_over(version)
            except (UserError, IntegrationError) as e:
                if isinstance(e, UserError) or not e.retryable:
                    await ledger.withdraw(handed_over_key(name))
                raise
            done = {"said": said}
            await ledger.done(key, done)
        detail = {"version": version, "handed_over": True}
        await self.deps.store.audit_once(key, user, "deploy.requested", f"{name} {version}", detail)
        return Reply(text=f"{done['said']} You asked, so another approver must approve it.")

    @staticmethod
    def _stable(
        running: dict[str, int] | None, previous: Rollout | None
    ) -> tuple[str | None, bool]:
        """The version the rollout starts from, and whether this is a first deploy."""
        last_good = None
        if previous is not None:
            last_good = previous.version if previous.state == COMPLETE else previous.stable
        if running is None:  # GitLab cannot say what runs: trust the last rollout
            return last_good, False
        if not running:
            return None, True
        if last_good in running:
            return last_good, False
        # Several versions and no record of which is stable: the one most containers run.
        return max(sorted(running), key=lambda v: running[v]), False

    def _started_reply(self, r: Rollout) -> Reply:
        return Reply(
            text=f"Deploy {r.id} of {r.service} `{r.version}` started; follow it in <#{r.channel}>."
        )

    def _timeout(self, service: Service) -> float:
        return service.approval_timeout.total_seconds()

    # -- people's decisions -------------------------------------------------------------------

    async def approve(self, value: str, user: str, job_id: str) -> None:
        name, rollout_id, step = parse_button(value)
        service = self.service(name)
        may = await holds(self.deps, user, self.approvers(service))
        alerts = await self.blocking_alerts(service)
        # Measured now, not trusted from the last refresh: Approve is refused while the
        # canary is worse than stable (bot/deploys/evidence.py).
        fresh = await self._measure_now(name, service, rollout_id)
        now = time.time()

        def decide(cur: Rollout | None) -> tuple[Rollout, bool]:
            r, promotes = rollout.approve(
                cur,
                rollout_id,
                user,
                now,
                may_approve=may,
                blocking_alert=alerts[0] if alerts else None,
                step=step,
            )
            if fresh is not None and evidence.applies(r, fresh):
                refused = evidence.refusal(fresh)
                if refused is not None:  # every other rule first: their words come first
                    raise refused
                r.evidence = fresh
            detail = {
                "step": r.step + 1,
                "approvals": len(r.approvals),
                "needed": r.approvals_needed,
            }
            r.outbox = [
                *r.outbox,
                audit_entry(user, "deploy.approved", r.subject(), detail),
                reply_entry(messages.approved_reply(r, user, promotes)),
            ]
            return r, promotes

        try:
            changed, _ = await self._decide_once(name, job_id, decide)
        except Refused:
            if fresh is not None and evidence.blocking(fresh):  # the message shows why too
                await self.record_evidence(name, rollout_id, fresh)
            raise
        await self._after_change(changed)

    async def _measure_now(
        self, name: str, service: Service, rollout_id: str
    ) -> dict[str, Any] | None:
        current = await self.store.load(name)
        if current is None or current.id != rollout_id or current.state != AWAITING:
            return None
        return await evidence.measure(self.deps.measures, name, service, current, time.time())

    async def record_evidence(
        self, name: str, rollout_id: str, measured: dict[str, Any]
    ) -> Rollout | None:
        """Store a measurement of the canary on its rollout (withdrawing approvals when it
        regressed) and show it; None when the rollout moved on meanwhile."""

        def decide(cur: Rollout | None) -> tuple[Rollout, None]:
            return evidence.recorded(cur, rollout_id, measured), None

        changed = await self._quietly(name, decide)
        if changed is not None:
            await self._deliver(changed)
        return changed

    async def reject(self, value: str, user: str, job_id: str) -> None:
        name, rollout_id, _ = parse_button(value)
        service = self.service(name)
        may = await holds(self.deps, user, self.approvers(service))

        def decide(cur: Rollout | None) -> tuple[Rollout, None]:
            r = rollout.reject(cur, rollout_id, user, may_approve=may)
            r.outbox = [
                *r.outbox,
                audit_entry(user, "deploy.rejected", r.subject(), {"percent": r.percent}),
                reply_entry(messages.rejected_reply(r, user)),
            ]
            return r, None

        changed, _ = await self._decide_once(name, job_id, decide)
        await self._after_change(changed)

    async def roll_back(
        self, name: str, user: str, job_id: str, rollout_id: str | None = None
    ) -> Reply:
        """`rollout_id`: the rollout a button showed (an alert's Roll back); refused with where
        the service stands when another rollout took its place."""
        self.service(name)
        await self._require_deployer(user, "roll back")

        def decide(cur: Rollout | None) -> tuple[Rollout, None]:
            was = cur.state if cur is not None else ""
            r = rollout.roll_back(cur, user, rollout_id)
            detail = {"from_state": was, "percent": r.percent}
            r.outbox = [
                *r.outbox,
                audit_entry(user, "deploy.rollback_requested", r.subject(), detail),
                reply_entry(messages.rollback_asked_reply(r, user)),
            ]
            return r, None

        changed, _ = await self._decide_once(name, job_id, decide)
        await self._after_change(changed)
        return Reply(text=f"Rolling {name} back to `{changed.stable or 'nothing'}` ({changed.id}).")

    async def promote(self, name: str, user: str, job_id: str) -> Reply:
        service = self.service(name)
        await self._require_deployer(user, "promote a deploy")
        current = await self.store.load(name)
        restart = await self._start_over(name, current)
        if current is not None and current.state == FAILED and not restart:
            # Before the decision: a GitLab job that failed runs again, or GitLab's refusal is
            # the answer and nothing changes. Done again if this job runs again: harmless,
            # since a job is retried only while it is the newest of its name.
            await self.deployer(name).retry(current)
        now = time.time()

        def decide(cur: Rollout | None) -> tuple[Rollout, str]:
            r, what = rollout.promote(cur, user, now, self._timeout(service), restart=restart)
            replies = {
                "retry": messages.retry_reply(user),
                "restart": messages.restart_reply(r, user),
            }
            reply = replies.get(what) or messages.renewed_reply(r, user)
            action = "deploy.approval_requested" if what == "renewed" else "deploy.retried"
            r.outbox = [
                *r.outbox,
                audit_entry(user, action, r.subject(), {"next_percent": r.next_percent}),
                reply_entry(reply),
            ]
            return r, what

        changed, what = await self._decide_once(name, job_id, decide)
        await self._after_change(changed)
        if what is None:
            return Reply(text=f"{name}: {describe_state(changed)} ({changed.id}).")
        if what == "retry":
            return Reply(text=f"Trying {name}'s step again ({changed.id}).")
        if what == "restart":
            return Reply(
                text=f"Starting {name} `{changed.version}` again from its first step "
                f"({changed.id})."
            )
        return Reply(
            text=(
                f"Asked again for approval of {name} to go to {changed.next_percent}% "
                f"({changed.id}); {counted(changed.approvals_needed, 'approver')} needed."
            )
        )

    async def _start_over(self, name: str, current: Rollout | None) -> bool:
        """For `/deploy promote` of a failed or rolled-back rollout: whether the deployer's
        system runs its change again from the first step (asked of a deployer that can)."""
        if current is None or current.state not in (FAILED, ROLLED_BACK):
            return False
        if current.state == FAILED and current.ended_by is not None:
            return False  # a failed rollback is tried again as a rollback
        try:
            deployer = self.deployer(name)
        except UserError:
            if current.state == FAILED:
                raise
            return False  # rolled back: the refusal says there is nothing to promote
        if not isinstance(deployer, StartsOver):
            return False
        return await deployer.start_over(current)

    async def _decide_once(
        self, name: str, job_id: str, decide: Callable[[Rollout | None], tuple[Rollout, T]]
    ) -> tuple[Rollout, T | None]:
        """A person's decision, taken once per job: a job run again finds its decision stored
        (result None) and only finishes what follows it (the step job, the messages)."""

        def once(cur: Rollout | None) -> tuple[Rollout, T | None]:
            if cur is not None and job_id in cur.handled:
                return cur, None
            new, result = decide(cur)
            new.handled = [*new.handled[-(HANDLED_KEPT - 1) :], job_id]
            return new, result

        return await self.store.change(name, once)

    # -- jobs ---------------------------------------------------------------------------------

    async def run_step(self, name: str, rollout_id: str) -> None:
        """Make the engine match the rollout's recorded step; then record the outcome."""
        settings = self.deps.settings
        # Another holder: a step of this service is still changing the engine (or its process
        # died and the lease has not lapsed yet); the job comes back later (commands/deploy.py).
        async with self.store.lease(name, settings.deploy_lease_seconds, wait=1.0):
            r = await self.store.load(name)
            if r is None or r.id != rollout_id:
                return
            if r.state in BUSY:
                await self._change_engine(r)
            elif r.state == AWAITING:
                await self._restore(r)
        current = await self.store.load(name)
        if current is not None and current.id == rollout_id:
            await self._after_change(current)

    async def _change_engine(self, r: Rollout) -> None:
        name = r.service
        deployer = self.deployer(name)
        service = self.service(name)
        now = time.time
        try:
            while fields := await deployer.prepare(r):
                r = await self._record(r, fields)
            if r.state == PROMOTING:
                await deployer.apply(r, r.target)
            else:
                await deployer.revert(r)
        except IntegrationError as e:
            error = f"{e.system}: {e.message}"

            def failed(cur: Rollout | None) -> tuple[Rollout, None]:
                f = rollout.step_failed(cur, r.id, error)
                f.outbox = [
                    *f.outbox,
                    audit_entry("opsloop", "deploy.failed", f.subject(), {"error": error}),
                    reply_entry(messages.failed_reply(f)),
                ]
                return f, None

            await self._quietly(name, failed)
            return
        snapshot = await self._snapshot(deployer, r)
        if r.state == PROMOTING:

            def applied(cur: Rollout | None) -> tuple[Rollout, None]:
                a = rollout.step_applied(cur, r.id, now(), self._timeout(service))
                entries = [
                    audit_entry(
                        "opsloop",
                        "deploy.promoted",
                        a.subject(),
                        {"percent": a.percent, "approved_by": a.history[-1]["approved_by"]},
                    )
                ]
                if a.state == COMPLETE:
                    entries.append(audit_entry("opsloop", "deploy.completed", a.subject(), {}))
                a.outbox = [*a.outbox, *entries, reply_entry(messages.step_reply(a, snapshot))]
                return a, None

            done = await self._quietly(name, applied)
            if done is not None and done.state == AWAITING and done.expires_at is not None:
                await self._schedule_expiry(done)
        else:

            def back(cur: Rollout | None) -> tuple[Rollout, None]:
                b = rollout.rolled_back(cur, r.id, now())
                b.outbox = [
                    *b.outbox,
                    audit_entry(b.ended_by or "opsloop", "deploy.rolled_back", b.subject(), {}),
                    reply_entry(messages.rolled_back_reply(b, snapshot)),
                ]
                return b, None

            await self._quietly(name, back)

    async def _record(self, r: Rollout, fields: dict[str, Any]) -> Rollout:
        """Store what the deployer's prepare found out (e.g. the pipeline) on the rollout."""
        changed, _ = await self.store.change(r.service, only(r.id, lambda c: replace(c, **fields)))
        return changed

    async def _restore(self, r: Rollout) -> None:
        """An awaiting rollout whose engine drifted (a crash mid-step, a removed container):
        bring the engine back to the recorded step."""
        deployer = self.deployer(r.service)
        running = await deployer.running_versions()
        wanted = deployer.planned(r, r.step)
        if running is None or wanted is None:
            return
        if running != wanted:
            log.info("%s: engine runs %s, rollout wants %s; restoring", r.service, running, wanted)
            try:
                await deployer.apply(r, r.step)
            except IntegrationError as e:
                log.warning("restoring %s: %s", r.service, e)

    async def expire(self, name: str, rollout_id: str, requested_at: float) -> None:
        def decide(cur: Rollout | None) -> tuple[Rollout, None]:
            r = rollout.expire(cur, rollout_id, requested_at)
            r.outbox = [
                *r.outbox,
                audit_entry("opsloop", "deploy.expired", r.subject(), {"percent": r.percent}),
                reply_entry(messages.expired_reply(r)),
            ]
            return r, None

        changed = await self._quietly(name, decide)
        if changed is not None:
            await self._after_change(changed)

    async def reconcile(self) -> None:
        """After a restart: finish steps that were under way, restore drifted engines, send
        what a crash left in outboxes and refresh the messages."""
        for name in self.deps.config.services:
            r = await self.store.load(name)
            if r is None or not (r.active or r.outbox):
                continue
            if r.state in BUSY or r.state == AWAITING:
                await self.deps.queue.enqueue(
                    STEP_JOB,
                    {"service": name, "rollout": r.id},
                    job_id=f"{STEP_JOB}:{r.id}:resume:{time.time_ns()}",
                )
            if r.state == AWAITING and not r.expired and r.expires_at is not None:
                await self._schedule_expiry(r)
            await self._follow_later(r, f"resume{time.time_ns()}")
            await self._measure_later(r, f"resume{time.time_ns()}")
            await self._deliver(r)

    # -- following a system that moves by itself (a controller): bot/deploys/following.py ----

    async def gave_up(self, name: str, rollout_id: str, error: str) -> None:
        """The service's system gave up on the awaiting rollout by itself: it fails."""

        def decide(cur: Rollout | None) -> tuple[Rollout, None]:
            f = rollout.gave_up(cur, rollout_id, error)
            f.outbox = [
                *f.outbox,
                audit_entry("opsloop", "deploy.failed", f.subject(), {"error": error}),
                reply_entry(messages.gave_up_reply(f)),
            ]
            return f, None

        changed = await self._quietly(name, decide)
        if changed is not None:
            await self._after_change(changed)

    async def deliver(self, r: Rollout) -> None:
        """Send what the rollout's outbox holds and render its message again."""
        await self._deliver(r)

    def made(self, name: str) -> Deployer | None:
        """The service's deployer, or None when it cannot be made (its system is not
        configured, the service is gone)."""
        try:
            return self.deployer(name)
        except UserError:
            return None

    async def _follow_later(self, r: Rollout, origin: str) -> None:
        """Start a follower chain for an active rollout whose deployer follows its system."""
        if not r.active or not isinstance(self.made(r.service), Follows):
            return
        await self.deps.queue.enqueue(
            FOLLOW_JOB,
            {"service": r.service, "rollout": r.id, "origin": origin, "n": 0, "seen": None},
            job_id=f"{FOLLOW_JOB}:{r.id}:{origin}:0",
        )

    async def _measure_later(self, r: Rollout, origin: str) -> None:
        """Measure the canary of an active rollout of a service with `analysis` at once, and
        go on measuring while it is active (bot/deploys/evidence_watch.py)."""
        service = self.deps.config.services.get(r.service)
        if service is None or service.analysis is None or not r.active or r.checksum:
            return
        await self.deps.queue.enqueue(
            EVIDENCE_JOB,
            {"service": r.service, "rollout": r.id, "origin": origin, "n": 0},
            job_id=f"{EVIDENCE_JOB}:{r.id}:{origin}:0",
        )

    # -- after every change: the job it needs, the outbox, the message ----------------------

    async def after_change(self, r: Rollout) -> None:
        """What follows a change of `r` stored elsewhere (bot/deploys/flagger_gate.py): its
        step job or expiry, its outbox and its message."""
        await self._after_change(r)

    async def _after_change(self, r: Rollout) -> None:
        # The engine work is queued before anything is said in Slack: a busy channel (the job
        # then runs again later) must not hold up, or lose, the step. The message is out
        # already (start posts it before storing the rollout), so only one job ever posts it.
        if r.state in BUSY:
            await self.deps.queue.enqueue(
                STEP_JOB,
                {"service": r.service, "rollout": r.id},
                job_id=f"{STEP_JOB}:{r.id}:{r.tries}",
            )
        elif r.state == AWAITING and not r.expired and r.expires_at is not None:
            await self._schedule_expiry(r)
        elif r.state == COMPLETE:  # its lead time, measured once (bot/feedback/service.py)
            job = {"service": r.service, "rollout": r.id}
            await self.deps.queue.enqueue(LEAD_TIME_JOB, job, job_id=f"{LEAD_TIME_JOB}:{r.id}")
        await self._follow_later(r, f"t{r.tries}")
        await dashboard_marks.annotate_later(self.deps, r)  # each step on the dashboards
        await self._measure_later(r, f"{r.state}{r.step}t{r.tries}")
        await self._deliver(r)

    async def _schedule_expiry(self, r: Rollout) -> None:
        assert r.expires_at is not None and r.requested_at is not None
        await self.deps.queue.enqueue(
            EXPIRE_JOB,
            {"service": r.service, "rollout": r.id, "requested_at": r.requested_at},
            job_id=f"{EXPIRE_JOB}:{r.id}:{r.requested_at}",
            run_at=r.expires_at,
        )

    async def _deliver(self, r: Rollout) -> None:
        """Send the outbox (thread replies, audit entries), then refresh the message."""
        # Stale: a newer rollout of the service took over; this one's messages are done.
        with contextlib.suppress(Stale):
            await self._deliver_now(r)

    async def _deliver_now(self, r: Rollout) -> None:
        # One deliverer per service at a time, reading the rollout afresh: two jobs sending the
        # same outbox would post its replies twice, and a stale render could overwrite a newer.
        async with self.store.delivering(r.service):
            current = await self.store.load(r.service)
            if current is None or current.id != r.id:
                raise Stale(r.id)
            r = current
            ts = r.ts
            # start() posts the message before it stores the rollout; a request of Flagger's
            # gate is stored first, and its own job delivers once it has posted the message.
            if ts is None:
                return
            while r.outbox:  # what other jobs added meanwhile goes out too, before the render
                item = r.outbox[0]
                if "audit" in item:
                    a = item["audit"]
                    await self.deps.store.audit(a["who"], a["action"], a["subject"], a["detail"])
                else:
                    await self.deps.slack.post_message(r.channel, item["reply"], thread_ts=ts)
                # Drained one by one: a busy channel part-way must not send the first ones again.
                r, _ = await self.store.change(r.service, only(r.id, without(item)))
            text, blocks, groups = await self._render(r)
            await self.deps.slack.request_update(r.channel, ts, text, blocks)
        # The alert messages showing this rollout as their last change follow it.
        await alert_links.tell_alerts(self.deps, groups)

    async def refresh(self, name: str) -> None:
        """Render the rollout's message again because an alert group it links to changed (a
        job, bot/alerting/last_change.py); the alert messages are not told back."""
        async with self.store.delivering(name):
            r = await self.store.load(name)
            if r is None or r.ts is None:
                return
            text, blocks, _ = await self._render(r)
            await self.deps.slack.request_update(r.channel, r.ts, text, blocks)

    async def render(self, r: Rollout) -> tuple[str, list[dict[str, Any]]]:
        text, blocks, _ = await self._render(r)
        return text, blocks

    async def _render(self, r: Rollout) -> tuple[str, list[dict[str, Any]], list[AlertGroup]]:
        """The message, and the open alert groups of the service (one read for both)."""
        service = self.deps.config.services.get(r.service)
        snapshot = Snapshot()
        groups: list[AlertGroup] = []
        if service is not None:
            with contextlib.suppress(UserError):
                snapshot = await self._snapshot(self.deployer(r.service), r)
            groups = await alert_links.open_alerts(self.deps, service)
        alerts = _unacknowledged(groups) if r.active else []
        links = await alert_links.links(self.deps, alert_links.linked(r, groups))
        message = messages.approval_message(r, snapshot, alerts, time.time())
        text, blocks = messages.with_alert_links(message, links)
        return text, blocks, groups

    @staticmethod
    async def _snapshot(deployer: Deployer, r: Rollout | None) -> Snapshot:
        try:
            return await deployer.snapshot(r)
        except IntegrationError as e:
            log.warning("reading what runs: %s", e)
            return Snapshot()

    async def _quietly(
        self, name: str, decide: Callable[[Rollout | None], tuple[Rollout, None]]
    ) -> Rollout | None:
        """A job's change; None when another run of the job made it already."""
        try:
            changed, _ = await self.store.change(name, decide)
        except (Stale, Refused):
            return None
        return changed

    # -- reading ------------------------------------------------------------------------------

    async def status(self, name: str | None) -> Reply:
        names = [name] if name else sorted(self.deps.config.services)
        rows: list[tuple[str, Rollout | None, Snapshot | None]] = []
        for n in names:
            self.service(n)
            r = await self.store.load(n)
            snapshot = None
            if name is not None:
                try:
                    snapshot = await self._snapshot(self.deployer(n), r)
                except UserError:
                    snapshot = None
            rows.append((n, r, snapshot))
        return messages.status_reply(rows, time.time())


def _unacknowledged(groups: list[AlertGroup]) -> list[str]:
    return [g.ref for g in groups if g.acked_by is None]


__all__ = [
    "EVIDENCE_JOB",
    "EXPIRE_JOB",
    "FOLLOW_JOB",
    "RECONCILE_JOB",
    "STEP_JOB",
    "DeployService",
]
