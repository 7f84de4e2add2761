"""Flagger's webhook gate: each `confirm-*` call with a new checksum is one approval request,
judged by the deploy flow's rules; every later call is answered from Redis.

A request is a rollout (bot/deploys/rollout.py) of one step, started by Flagger, carrying the
checksum, the webhook that asked and Flagger's last phase. It is stored by the call that opens
it, in one transaction on the service's rollout, so concurrent first calls open one request;
the call is answered at once (403) and a durable job (`deploys.flagger`) posts its message
(bot/slack_once.py, keyed by the request) and follows it up. From then on the request is any
other rollout: Approve and Reject are the deploy flow's (approvers only, four eyes, N distinct
approvers, expiry, the alert gate), and a request approved (promoting, then complete) opens
the gate: its `confirm-*` calls are answered 200; one a person rejected answers Flagger's
`rollback` webhook 200.

A call with another checksum opens a new request that takes the old one's place; the old one
travels with it (`replaced`) until the job has sent what it still had to say and edited its
message to say that Flagger moved on. `event` calls record Flagger's phase and event message
on the request and refresh its message; they never post one.

A request is started by Flagger, unless a person's `/deploy` set the Canary target's image
within the last hour and no request opened since: then it is theirs (`started_by`, recorded by
bot/deploys/service.py's hand-over), so four eyes apply: they may reject it, not approve it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from bot.deploys import gate_messages

# The deploy flow's own helpers: a change of one rollout only, and its outbox entries.
from bot.deploys.changes import audit_entry, only, reply_entry
from bot.deploys.rollout import (
    AWAITING,
    GATE_FINAL_PHASES,
    Rollout,
    Stale,
    gate_open,
    gate_rejected,
)
from bot.deploys.service import DeployService, handed_over_key
from bot.deps import Deps
from bot.slack_once import post_once

log = logging.getLogger(__name__)

FLAGGER_JOB = "deploys.flagger"
KIND = "flagger"  # the YAML's `deployer:` value of the services this gate serves
STARTED_BY = "flagger"  # who started a request Flagger opened
CONFIRM = ("confirm-rollout", "confirm-traffic-increase", "confirm-promotion")
ROLLBACK = "rollback"
EVENT = "event"
HOOK_TYPES = (*CONFIRM, ROLLBACK, EVENT)
STABLE = "primary"  # what Flagger runs while a canary is tried: its primary Deployment
MESSAGE_KEPT = 2000  # characters of an event message recorded
# How long after a person's `/deploy` set the target's image Flagger's next new request is
# theirs (so they may not approve it); Flagger sees the change within its analysis interval.
ASKED_WITHIN = 3600.0


@runtime_checkable
class CanarySettings(Protocol):
    """What the gate reads of a `deployer: flagger` service (integrations/flagger/config.py)."""

    @property
    def namespace(self) -> str: ...

    @property
    def canary(self) -> str: ...


@dataclass(frozen=True)
class FlaggerCall:
    """One webhook call, as Flagger's body (`CanaryWebhookPayload`) and the route's `type`
    say it."""

    hook: str  # one of HOOK_TYPES
    name: str
    namespace: str
    phase: str
    checksum: str
    metadata: dict[str, str]

    @property
    def canary(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Answer:
    """What the route answers Flagger: 2xx lets it go on, anything else makes it wait."""

    status: int
    text: str


class FlaggerGate:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.deploys = DeployService(deps)
        self.store = deps.store.deploys

    def service_of(self, namespace: str, canary: str) -> str | None:
        """The name of the service gating Canary `namespace/canary`, if one does."""
        for name, service in self.deps.config.services.items():
            if (
                service.deployer == KIND
                and isinstance(service, CanarySettings)
                and (service.namespace, service.canary) == (namespace, canary)
            ):
                return name
        return None

    # -- the route's answers (fast: one read, at most one transaction and one enqueue) ------

    async def answer(self, call: FlaggerCall, service: str) -> Answer:
        """The answer to a gate call: 200 when the gate is open (for `rollback`: when a person
        rejected), else 403; raises when Redis does not answer (the route fails closed)."""
        current = await self.store.load(service)
        if call.hook == ROLLBACK:
            return _rollback_answer(current, call)
        if current is not None and current.checksum == call.checksum:
            if current.ts is None or current.replaced:  # its job has not finished: again
                await self._follow_up(current, "open")
            return _confirm_answer(current)
        return await self._open(call, service)

    async def _open(self, call: FlaggerCall, service: str) -> Answer:
        settings = self.deploys.service(service)
        new_id = await self.store.new_id()  # unused when a concurrent call opened it first
        now = time.time()
        timeout = settings.approval_timeout.total_seconds()
        asked = await self.deps.store.effects.load(handed_over_key(service))
        asked_at = asked.intent_at or 0.0
        asked_by = str(asked.intent.get("by") or "") if now - asked_at < ASKED_WITHIN else ""

        def decide(cur: Rollout | None) -> tuple[Rollout, None]:
            if cur is not None and cur.checksum == call.checksum:
                return cur, None  # a concurrent first call opened it
            # The first request opened since a person's /deploy is theirs: four eyes apply.
            theirs = bool(asked_by) and (cur is None or cur.started_at < asked_at)
            new = Rollout(
                id=new_id,
                service=service,
                version=call.checksum,
                stable=STABLE,
                percents=[100],
                approvals_needed=settings.approvals,
                started_by=asked_by if theirs else STARTED_BY,
                channel=settings.channel or "",
                started_at=now,
                state=AWAITING,
                requested_at=now,
                expires_at=now + timeout,
                checksum=call.checksum,
                canary=call.canary,
                gate=call.hook,
                phase=call.phase or None,
            )
            detail = {"canary": call.canary, "checksum": call.checksum, "webhook": call.hook}
            if theirs:
                detail["asked_by"] = asked_by
            new.outbox = [
                audit_entry(STARTED_BY, "deploy.requested", new.subject(), detail),
                reply_entry(gate_messages.requested_reply(new)),
            ]
            if cur is not None:
                new.replaced = [*cur.replaced, _superseded(cur, new)]
            return new, None

        opened, _ = await self.store.change(service, decide)
        await self._follow_up(opened, "open")
        return _confirm_answer(opened)

    async def record_event(self, call: FlaggerCall, service: str) -> Answer:
        """An `event` call: Flagger's phase and message on the request it concerns, and its
        message refreshed; never a new message. Raises when Redis does not answer."""
        current = await self.store.load(service)
        if current is None or not _concerns(current, call):
            log.info("Flagger event for %s with no open request: %s", call.canary, call.phase)
            return Answer(200, "Recorded nothing: no approval request of this canary is open.\n")
        said = (call.metadata.get("eventMessage") or "")[:MESSAGE_KEPT] or None

        def decide(cur: Rollout | None) -> tuple[Rollout, bool]:
            if cur is None or cur.id != current.id:
                raise Stale(current.id)
            phase = call.phase or cur.phase
            if (phase, said or cur.phase_message) == (cur.phase, cur.phase_message):
                return cur, False
            changed = replace(cur, phase=phase, phase_message=said or cur.phase_message)
            if phase in GATE_FINAL_PHASES and cur.phase != phase:
                action = (
                    "deploy.canary_succeeded" if phase == "Succeeded" else "deploy.canary_failed"
                )
                changed.outbox = [
                    *changed.outbox,
                    audit_entry(STARTED_BY, action, changed.subject(), {"event": said or ""}),
                    reply_entry(gate_messages.finished_reply(changed, phase, said)),
                ]
            return changed, True

        try:
            changed, news = await self.store.change(service, decide)
        except Stale:  # another request opened meanwhile: this event is about the old one
            return Answer(200, "Recorded nothing: Flagger has moved on to another checksum.\n")
        if news:
            await self._follow_up(changed, f"event:{time.time_ns()}")
        return Answer(200, f"Recorded on {changed.id}.\n")

    async def _follow_up(self, r: Rollout, why: str) -> None:
        key = f"{FLAGGER_JOB}:{r.id}:{why}"
        fresh = await self.deps.queue.enqueue(
            FLAGGER_JOB, {"service": r.service, "rollout": r.id}, job_id=key
        )
        if fresh:
            self.deps.metrics.enqueued(FLAGGER_JOB).inc()

    # -- the job: post the request's message once, close the one it replaced, deliver -------

    async def follow(self, service: str, rollout_id: str) -> None:
        """Converge: the request's message posted (once, however often this runs), the
        replaced requests' messages edited, the outbox sent, the message refreshed."""
        r = await self.store.load(service)
        if r is None or r.id != rollout_id:
            return  # a newer request took over; its job closes this one
        # Stale: a newer request took over meanwhile; its own job finishes the work.
        with contextlib.suppress(Stale):
            if r.ts is None:
                r = await self._post(r)
            while r.replaced:
                r = await self._close(r, r.replaced[0])
            await self.deploys.after_change(r)

    async def _post(self, r: Rollout) -> Rollout:
        """The request's message, posted once: one job at a time (post_once makes a re-run
        find what an earlier run posted, not two runs at once), and recorded on it."""
        async with self.store.delivering(r.service):
            current = await self.store.load(r.service)
            if current is None or current.id != r.id:
                raise Stale(r.id)
            if current.ts is not None:
                return current
            text, blocks = await self.deploys.render(current)
            posted = await post_once(
                self.deps.slack,
                f"{FLAGGER_JOB}:{r.id}",
                r.channel,
                text,
                blocks,
                settle_after=self.deps.settings.settle_seconds,
            )
            changed, _ = await self.store.change(r.service, _posted(r.id, posted.ts))
            return changed

    async def _close(self, r: Rollout, entry: dict[str, Any]) -> Rollout:
        """Send what a replaced request still had to say, and edit its message to say that
        Flagger moved on; then forget it. Item by item, so a re-run sends nothing twice."""
        old = Rollout.from_json(json.dumps(entry))
        async with self.store.delivering(r.service):
            for item in list(old.outbox):
                if "audit" in item:
                    a = item["audit"]
                    await self.deps.store.audit(a["who"], a["action"], a["subject"], a["detail"])
                elif old.ts is not None:
                    await self.deps.slack.post_message(old.channel, item["reply"], thread_ts=old.ts)
                old.outbox.remove(item)
                r, _ = await self.store.change(r.service, only(r.id, _with_replaced(old)))
            if old.ts is not None:
                text, blocks = await self.deploys.render(old)
                await self.deps.slack.request_update(old.channel, old.ts, text, blocks)
            r, _ = await self.store.change(r.service, only(r.id, _without_replaced(old.id)))
        return r

    async def reconcile(self) -> None:
        """After a restart: follow up every gate request whose job may not have finished."""
        for name, service in self.deps.config.services.items():
            if service.deployer != KIND:
                continue
            r = await self.store.load(name)
            if r is not None and r.checksum is not None and (r.ts is None or r.replaced):
                await self._follow_up(r, f"resume:{time.time_ns()}")


# -- decisions and answers (pure) --------------------------------------------------------------


def _confirm_answer(r: Rollout) -> Answer:
    if gate_open(r):
        return Answer(200, f"Approved in opsloop ({r.id}); go on.\n")
    if gate_rejected(r):
        return Answer(403, f"Rejected in opsloop by {r.ended_by} ({r.id}); not approved.\n")
    if r.state == AWAITING and r.expired:
        return Answer(
            403,
            f"The approval request expired ({r.id}); a deployer asks again with "
            f"/deploy promote {r.service}.\n",
        )
    return Answer(
        403,
        f"Waiting for approval in Slack ({r.id}: {len(r.approvals)} of {r.approvals_needed}).\n",
    )


def _rollback_answer(r: Rollout | None, call: FlaggerCall) -> Answer:
    """200 once a person rejected this checksum's request, or rolled back the approved one
    Flagger is still running (its analysis carries a newer checksum)."""
    if r is not None and gate_rejected(r):
        running = bool(r.history) and r.phase not in GATE_FINAL_PHASES
        if r.checksum == call.checksum or running:
            return Answer(200, f"Rejected in opsloop by {r.ended_by} ({r.id}); roll back.\n")
    return Answer(403, "Nobody rejected this canary in opsloop; no rollback.\n")


def _concerns(r: Rollout, call: FlaggerCall) -> bool:
    """Whether an event is about request `r`: its checksum, or Flagger is still running what
    `r` let through or turned back (the analysis carries the next checksum)."""
    if r.checksum is None:
        return False
    decided = gate_open(r) or gate_rejected(r)
    return r.checksum == call.checksum or (decided and r.phase not in GATE_FINAL_PHASES)


def _superseded(old: Rollout, new: Rollout) -> dict[str, Any]:
    """The old request as it travels with the new one: marked, with its last words."""
    closed = replace(old, superseded_by=new.id, replaced=[])
    if old.checksum is not None and not (gate_open(old) or gate_rejected(old)):
        detail = {"checksum": old.checksum, "by": new.id}
        closed.outbox = [
            *closed.outbox,
            audit_entry(STARTED_BY, "deploy.superseded", old.subject(), detail),
            reply_entry(gate_messages.superseded_reply(old, new)),
        ]
    return dataclasses.asdict(closed)


def _posted(rollout_id: str, ts: str) -> Callable[[Rollout | None], tuple[Rollout, None]]:
    """Record where a request's message is, also when a newer request took it over since."""

    def decide(cur: Rollout | None) -> tuple[Rollout, None]:
        if cur is not None and cur.id == rollout_id:
            return replace(cur, ts=cur.ts or ts), None
        if cur is not None and any(e.get("id") == rollout_id for e in cur.replaced):
            entries = [
                {**e, "ts": e.get("ts") or ts} if e.get("id") == rollout_id else e
                for e in cur.replaced
            ]
            return replace(cur, replaced=entries), None
        raise Stale(rollout_id)

    return decide


def _with_replaced(old: Rollout) -> Callable[[Rollout], Rollout]:
    def keep(cur: Rollout) -> Rollout:
        entries = [dataclasses.asdict(old) if e.get("id") == old.id else e for e in cur.replaced]
        return replace(cur, replaced=entries)

    return keep


def _without_replaced(old_id: str) -> Callable[[Rollout], Rollout]:
    def drop(cur: Rollout) -> Rollout:
        return replace(cur, replaced=[e for e in cur.replaced if e.get("id") != old_id])

    return drop


__all__ = ["EVENT", "FLAGGER_JOB", "HOOK_TYPES", "Answer", "FlaggerCall", "FlaggerGate"]
