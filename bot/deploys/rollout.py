"""One rollout of a service, and every decision that moves it, as pure functions.

The store applies these functions inside a Redis transaction (WATCH/MULTI on the service's key),
so a decision is taken against the state it read, or taken again on the newer state: two Approve
clicks at the same moment promote once. Nothing here talks to Slack, Redis or an engine.

States:

    promoting --(step applied)--> awaiting --(N approvals)--> promoting ... --> complete
        |                            |  \\--(timeout)--> awaiting, expired --(promote)--> awaiting
        |                            \\--(reject, rollback)--> rolling_back --> rolled_back
        \\--(the engine failed)--> failed --(promote: try the step again)--> promoting
                                       \\--(rollback)--> rolling_back
    awaiting --(the system gave up by itself, e.g. its controller aborted)--> failed
    failed, rolled_back --(promote, the system starts the change over)--> promoting step 0

`step` is the index of the last applied step of the service's `steps` (-1: none yet, only the
stable version runs); `target` is the step being applied while promoting.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bot.errors import UserError

AWAITING = "awaiting"
PROMOTING = "promoting"
ROLLING_BACK = "rolling_back"
COMPLETE = "complete"
ROLLED_BACK = "rolled_back"
FAILED = "failed"

ACTIVE = frozenset({AWAITING, PROMOTING, ROLLING_BACK, FAILED})
FINAL = frozenset({COMPLETE, ROLLED_BACK})
BUSY = frozenset({PROMOTING, ROLLING_BACK})  # the engine is being changed


class Refused(UserError):
    """A decision the rules do not allow; the message is for the person who tried."""


class Stale(Exception):
    """A job's change no longer applies: someone else made it already (a job ran twice)."""


@dataclass
class Rollout:
    """The record of one `/deploy <service> <version>`, kept in Redis as JSON."""

    id: str  # D-<n>
    service: str
    version: str
    stable: str | None  # what ran before; None for a first deploy
    percents: list[int]  # the service's steps when the rollout started
    approvals_needed: int
    started_by: str
    channel: str
    started_at: float
    state: str = PROMOTING
    step: int = -1
    target: int = 0
    first: bool = False  # nothing ran: the version goes straight to full size
    approvals: list[str] = field(default_factory=list)
    requested_at: float | None = None
    expires_at: float | None = None
    expired: bool = False
    ts: str | None = None  # the approval message
    finished_at: float | None = None
    error: str | None = None
    ended_by: str | None = None  # who rejected or rolled back
    pipeline_id: int | None = None  # GitLab deployer
    pipeline_url: str | None = None
    # When the rollout's pipeline was first asked for: after a crash between making the
    # pipeline and recording it, the pipeline is found again by its marker, not made twice.
    pipeline_asked_at: float | None = None
    # Units at 100%, for a deployer that reads the service's size from its system when the
    # rollout starts (recorded by its `prepare`); None: the service's settings say.
    size: int | None = None
    tries: int = 0  # times the engine was asked to change; part of the step job's id
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per applied step
    # Thread replies and audit entries decided with a change and not yet sent: stored in the
    # same transaction as the change, so a crash between the two loses neither.
    outbox: list[dict[str, Any]] = field(default_factory=list)
    # The jobs whose decision is stored (the newest few): a job that runs again after a
    # failure further on (Slack busy, a crash) must not decide twice, nor be refused.
    handled: list[str] = field(default_factory=list)
    # A request of Flagger's webhook gate (bot/deploys/flagger_gate.py): Flagger runs the canary
    # and asks opsloop at its gates; None for the rollouts opsloop runs itself.
    checksum: str | None = None  # the Canary's revision, as Flagger's webhook bodies name it
    canary: str | None = None  # <namespace>/<name> of the Canary
    gate: str | None = None  # the webhook that asked: confirm-rollout, confirm-promotion, ...
    phase: str | None = None  # Flagger's last phase: Waiting, Progressing, Succeeded, Failed...
    phase_message: str | None = None  # Flagger's last event message
    superseded_by: str | None = None  # the request that took over when the checksum changed
    # The requests this one took over from, kept until their outboxes are sent and their
    # messages say so (bot/deploys/flagger_gate.py).
    replaced: list[dict[str, Any]] = field(default_factory=list)
    # The canary's last measurement against stable (bot/deploys/evidence.py), for a service
    # with `analysis`; None: never measured.
    evidence: dict[str, Any] | None = None

    # -- reading --------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def percent(self) -> int:
        """The new version's share now (0 before the first step)."""
        return self.percents[self.step] if self.step >= 0 else 0

    @property
    def next_step(self) -> int | None:
        """The step an approval would apply, or None when the last one is applied."""
        nxt = self.step + 1 if self.state != PROMOTING else self.target
        return nxt if nxt < len(self.percents) else None

    @property
    def next_percent(self) -> int | None:
        nxt = self.next_step
        return self.percents[nxt] if nxt is not None else None

    def subject(self) -> str:
        """How the audit log names this rollout."""
        return f"{self.service} {self.version} ({self.id})"

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Rollout:
        # Fields an older opsloop stored and this one no longer has are left out.
        data = json.loads(raw)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


# -- decisions (each returns a changed copy; the caller stores it atomically) ------------------


def start(
    current: Rollout | None,
    new: Rollout,
) -> Rollout:
    """A new rollout, unless one is under way for the service."""
    if current is not None and current.active:
        raise Refused(
            f"{current.service} is already deploying {current.version} ({current.id}, "
            f"{describe_state(current)}); one rollout per service at a time.",
            f"Finish it with the approval buttons, or `/deploy rollback {current.service}`.",
        )
    return new


def _current(rollout: Rollout | None, rollout_id: str | None) -> Rollout:
    if rollout is None:
        raise Refused("There is no rollout of this service.")
    if rollout_id is not None and rollout.id != rollout_id:
        raise Refused(
            f"This request is over: {rollout.service} has moved on to {rollout.id} "
            f"({rollout.version}, {describe_state(rollout)}).",
        )
    return rollout


def approve(
    rollout: Rollout | None,
    rollout_id: str,
    user: str,
    now: float,
    *,
    may_approve: bool,
    blocking_alert: str | None,
    step: int | None = None,
) -> tuple[Rollout, bool]:
    """Count `user`'s approval of the step after `step`; (changed rollout, True when the step
    now promotes). `step` is what the clicked message showed; None: the current one."""
    r = _current(rollout, rollout_id)
    if r.state == PROMOTING:
        raise Refused(f"{r.service} is already being promoted to {r.next_percent}%.")
    if r.state != AWAITING:
        raise Refused(
            f"{r.service} {r.version} is {describe_state(r)}; there is nothing to approve."
        )
    if step is not None and step != r.step:
        raise Refused(
            f"That approval was for an earlier step; {r.service} is now {describe_state(r)}.",
            "Look at the message again and approve the step it shows now.",
        )
    if r.expired or (r.expires_at is not None and now >= r.expires_at):
        raise Refused(
            f"This approval request expired; the canary is held at {r.percent}%.",
            f"A deployer can ask again with `/deploy promote {r.service}`.",
        )
    if user == r.started_by:
        raise Refused("You started this rollout, so you may not approve it; another approver must.")
    if not may_approve:
        raise Refused(f"Only approvers of {r.service} may approve its promotions.")
    if user in r.approvals:
        raise Refused(
            f"You already approved this step ({len(r.approvals)} of {r.approvals_needed}); "
            "it needs a different approver."
        )
    if blocking_alert is not None:
        raise Refused(
            f"{blocking_alert} is firing for {r.service} and nobody has acknowledged it; "
            "promotion is blocked.",
            f"Look at {blocking_alert} first (acknowledge it with `/ack {blocking_alert}`), "
            "then approve again.",
        )
    approvals = [*r.approvals, user]
    if len(approvals) < r.approvals_needed:
        return replace(r, approvals=approvals), False
    nxt = r.step + 1
    return replace(r, approvals=approvals, state=PROMOTING, target=nxt, tries=r.tries + 1), True


def reject(rollout: Rollout | None, rollout_id: str, user: str, *, may_approve: bool) -> Rollout:
    """An approver, or the person who started it, turns the rollout back."""
    r = _current(rollout, rollout_id)
    if r.state not in (AWAITING, FAILED):
        raise Refused(f"{r.service} {r.version} is {describe_state(r)}; it cannot be rejected now.")
    if user != r.started_by and not may_approve:
        raise Refused(
            f"Only approvers of {r.service}, or the person who started the rollout, may reject it."
        )
    return replace(r, state=ROLLING_BACK, ended_by=user, tries=r.tries + 1)


def roll_back(rollout: Rollout | None, user: str, rollout_id: str | None = None) -> Rollout:
    """A deployer's `/deploy rollback`: an active rollout, or the last complete one.
    `rollout_id`: the one a button showed (an alert's Roll back); refused once another
    rollout of the service took its place."""
    r = _current(rollout, rollout_id)
    if r.state in BUSY:
        raise Refused(
            f"{r.service} is {describe_state(r)} right now; roll back once that step is done."
        )
    if r.state == ROLLED_BACK:
        raise Refused(f"{r.service} {r.version} is already rolled back.")
    if r.state == COMPLETE and r.first:  # (a stable version unknown is not nothing: GitLab)
        raise Refused(f"{r.service} {r.version} was its first version; there is nothing before it.")
    return replace(r, state=ROLLING_BACK, ended_by=user, tries=r.tries + 1)


def promote(
    rollout: Rollout | None, user: str, now: float, timeout: float, *, restart: bool = False
) -> tuple[Rollout, str]:
    """A deployer's `/deploy promote`: try a failed step again, or ask again for approval.

    Approvals are never skipped: an expired or unanswered request is renewed. `restart`: the
    deployer's system runs the change again from its first step (StartsOver in
    bot/deploys/ports.py), so a failed or rolled-back rollout starts again at step 0, as a new
    `/deploy` would. Returns the changed rollout and what happened: "retry", "restart" or
    "renewed".
    """
    r = _current(rollout, None)
    if restart and r.state in (FAILED, ROLLED_BACK):
        again = replace(
            r,
            state=PROMOTING,
            step=-1,
            target=0,
            approvals=[],
            ended_by=None,
            error=None,
            finished_at=None,
            requested_at=None,
            expires_at=None,
            expired=False,
            tries=r.tries + 1,
        )
        return again, "restart"
    if r.state == FAILED:
        # A failed rollback is tried again as a rollback, never turned into a promotion.
        again_state = ROLLING_BACK if r.ended_by is not None else PROMOTING
        return replace(r, state=again_state, error=None, tries=r.tries + 1), "retry"
    if r.state == AWAITING:
        renewed = replace(
            r, expired=False, approvals=[], requested_at=now, expires_at=now + timeout
        )
        return renewed, "renewed"
    raise Refused(f"{r.service} {r.version} is {describe_state(r)}; there is nothing to promote.")


def step_applied(rollout: Rollout | None, rollout_id: str, now: float, timeout: float) -> Rollout:
    """The engine runs the target step: wait for the next approval, or complete."""
    r = _current(rollout, rollout_id)
    if r.state != PROMOTING:
        raise Stale("not promoting")
    history = [
        *r.history,
        {
            "step": r.target,
            "percent": r.percents[r.target],
            "at": now,
            "approved_by": list(r.approvals),
        },
    ]
    if r.target >= len(r.percents) - 1:
        return replace(
            r,
            state=COMPLETE,
            step=r.target,
            approvals=[],
            finished_at=now,
            history=history,
            requested_at=None,
            expires_at=None,
        )
    return replace(
        r,
        state=AWAITING,
        step=r.target,
        approvals=[],
        requested_at=now,
        expires_at=now + timeout,
        expired=False,
        history=history,
    )


def step_failed(rollout: Rollout | None, rollout_id: str, error: str) -> Rollout:
    r = _current(rollout, rollout_id)
    if r.state not in BUSY:
        raise Stale("not changing")
    return replace(r, state=FAILED, error=error)


def gave_up(rollout: Rollout | None, rollout_id: str, error: str) -> Rollout:
    """The deployer's system gave up on an awaiting rollout by itself (its controller aborted
    it): the rollout fails where it stands, and a person decides (promote, or roll back)."""
    r = _current(rollout, rollout_id)
    if r.state != AWAITING:
        raise Stale("not awaiting")
    return replace(r, state=FAILED, target=r.step, error=error, approvals=[], expires_at=None)


def rolled_back(rollout: Rollout | None, rollout_id: str, now: float) -> Rollout:
    r = _current(rollout, rollout_id)
    if r.state != ROLLING_BACK:
        raise Stale("not rolling back")
    return replace(r, state=ROLLED_BACK, finished_at=now, approvals=[], expires_at=None)


def expire(rollout: Rollout | None, rollout_id: str, requested_at: float) -> Rollout:
    """The approval request made at `requested_at` timed out (a newer one is left alone)."""
    r = _current(rollout, rollout_id)
    if r.state != AWAITING or r.expired or r.requested_at != requested_at:
        raise Stale("not this request")
    return replace(r, expired=True)


def describe_state(r: Rollout) -> str:
    """A few words for messages: where the rollout stands."""
    if r.checksum is not None:
        return _describe_gate(r)
    if r.state == AWAITING:
        if r.expired:
            return f"held at {r.percent}%, its approval request expired"
        if r.step < 0:
            return f"waiting for approval to go to {r.next_percent}%"
        return f"at {r.percent}%, waiting for approval to go to {r.next_percent}%"
    if r.state == PROMOTING:
        return f"being promoted to {r.percents[r.target]}%"
    if r.state == ROLLING_BACK:
        return "rolling back"
    if r.state == FAILED and r.ended_by is not None:
        return "failed while rolling back"
    if r.state == FAILED and r.target <= r.step:  # the system gave up between steps
        return f"failed at {r.percent}%"
    if r.state == FAILED:
        return f"failed going to {r.percents[r.target]}% (still at {r.percent}%)"
    if r.state == COMPLETE:
        return "complete"
    return "rolled back"


# Flagger's phases after which it asks nothing more of this revision.
GATE_FINAL_PHASES = frozenset({"Succeeded", "Failed"})


def gate_open(r: Rollout) -> bool:
    """A gate request that people approved: Flagger's confirm webhooks are answered 200."""
    return r.checksum is not None and r.state in (PROMOTING, COMPLETE)


def gate_rejected(r: Rollout) -> bool:
    """A gate request a person turned back: Flagger's rollback webhook is answered 200."""
    decided = r.state in (ROLLING_BACK, ROLLED_BACK, FAILED)
    return r.checksum is not None and r.ended_by is not None and decided


def _describe_gate(r: Rollout) -> str:
    phase = f" (Flagger: {r.phase})" if r.phase else ""
    undecided = not gate_open(r) and not gate_rejected(r)
    if r.superseded_by is not None and undecided:
        return "closed: Flagger moved on to another revision before it was approved"
    if r.phase in GATE_FINAL_PHASES and undecided:
        return f"closed: Flagger ended the canary ({r.phase}) before it was approved"
    if r.state == AWAITING and r.expired:
        return f"its approval request expired; the gate stays closed{phase}"
    if r.state == AWAITING:
        return f"waiting for approval at Flagger's {r.gate or 'confirm'} gate{phase}"
    if gate_open(r):
        if r.phase == "Succeeded":
            return "approved; Flagger promoted the canary"
        if r.phase == "Failed":
            return "approved; Flagger rolled the canary back (Failed)"
        return f"approved; the gate is open{phase}"
    if gate_rejected(r):
        return f"rejected; Flagger's rollback webhook says roll back{phase}"
    return r.state.replace("_", " ") + phase
