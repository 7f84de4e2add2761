"""Every word and block of a Flagger gate request (a rollout with a `checksum`), reviewed in one
place. bot/deploys/messages.py hands a gate request's message and thread replies to these and
adds the Approve and Reject buttons itself, as for any rollout."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.deploys.rollout import (
    AWAITING,
    COMPLETE,
    GATE_FINAL_PHASES,
    PROMOTING,
    ROLLED_BACK,
    ROLLING_BACK,
    Rollout,
    describe_state,
    gate_open,
    gate_rejected,
)
from bot.durations import format_duration
from bot.replies import context, counted, escape, mrkdwn_section

Blocks = list[dict[str, Any]]
EVENT_SHOWN = 500  # characters of Flagger's event message on the message

_PHASE_EMOJI = {
    "Succeeded": ":white_check_mark:",
    "Failed": ":x:",
}
_STATE_EMOJI = {
    AWAITING: ":raised_hand:",
    PROMOTING: ":unlock:",
    COMPLETE: ":unlock:",
    ROLLING_BACK: ":rewind:",
    ROLLED_BACK: ":leftwards_arrow_with_hook:",
}


def _emoji(r: Rollout) -> str:
    if r.superseded_by is not None and not (gate_open(r) or gate_rejected(r)):
        return ":fast_forward:"
    if gate_open(r) and r.phase in _PHASE_EMOJI:
        return _PHASE_EMOJI[r.phase]
    return _STATE_EMOJI.get(r.state, ":large_blue_circle:")


def asks(r: Rollout) -> bool:
    """Whether the message still offers the buttons: not once Flagger has moved on to another
    checksum, or ended the canary (Succeeded, Failed) before anyone decided."""
    return r.superseded_by is None and r.phase not in GATE_FINAL_PHASES


def _approvals(r: Rollout) -> str:
    words = f"{len(r.approvals)} of {r.approvals_needed}"
    if r.approvals:
        words += ": " + ", ".join(f"<@{u}>" for u in r.approvals)
    if r.history:  # approved: who did is in the thread and the audit log
        approvers = r.history[-1].get("approved_by") or []
        words = f"{r.approvals_needed} of {r.approvals_needed}: " + ", ".join(
            f"<@{u}>" for u in approvers
        )
    return words


def _asked_by(r: Rollout) -> str:
    gate = f" (`{escape(r.gate)}` webhook)" if r.gate else ""
    if r.started_by.startswith(("U", "W")) and r.started_by.isalnum():
        return f"<@{r.started_by}>{gate}"
    return f"Flagger{gate}"


def gate_message(r: Rollout, alerts: list[str], now: float) -> tuple[str, Blocks]:
    """A gate request's one message, without its buttons; edited in place after every
    decision and every Flagger event."""
    head = (
        f"{_emoji(r)} Flagger canary *{escape(r.service)}* revision `{escape(r.version)}` "
        f"({r.id}): {escape(describe_state(r))}"
    )
    fields = [
        {"type": "mrkdwn", "text": f"*Service*\n{escape(r.service)}"},
        {"type": "mrkdwn", "text": f"*Canary*\n{escape(r.canary or '?')}"},
        {"type": "mrkdwn", "text": f"*Checksum*\n`{escape(r.checksum or '?')}`"},
        {"type": "mrkdwn", "text": f"*Flagger phase*\n{escape(r.phase or 'not told yet')}"},
        {"type": "mrkdwn", "text": f"*Asked by*\n{_asked_by(r)}"},
        {"type": "mrkdwn", "text": f"*Approvals*\n{_approvals(r)}"},
    ]
    blocks: Blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": head}, "fields": fields}
    ]
    if r.phase_message:
        said = escape(r.phase_message[:EVENT_SHOWN])
        blocks.append(mrkdwn_section(f"*Flagger's last event*\n{said}"))
    if alerts and r.state == AWAITING and asks(r):
        blocks.append(
            mrkdwn_section(
                ":rotating_light: *Firing, unacknowledged:* "
                + ", ".join(escape(a) for a in alerts)
                + ". Approval is blocked until acknowledged."
            )
        )
    note = _note(r, now)
    if note:
        blocks.append(context(note))
    text = f"Deploy {r.service} {r.version} ({r.id}): {describe_state(r)}"
    return text, blocks


def _note(r: Rollout, now: float) -> str | None:
    service = escape(r.service)
    if r.superseded_by is not None:
        return (
            f":fast_forward: Flagger has moved on: its webhooks carry another checksum now, "
            f"asked about in {r.superseded_by}. This message is no longer updated."
        )
    if not asks(r):
        return f"Flagger ended this canary ({escape(r.phase or '?')}); nothing is asked any more."
    if r.state == AWAITING and r.expired:
        return (
            ":hourglass: This approval request expired; the gate stays closed and Flagger keeps "
            f"waiting. A deployer can ask again with `/deploy promote {service}`."
        )
    if r.state == AWAITING and r.expires_at is not None:
        left = format_duration(timedelta(seconds=max(int(r.expires_at - now), 0)))
        return (
            f"Until approved, Flagger's `{escape(r.gate or 'confirm')}` webhook is answered 403 "
            f"and the canary waits. Approval request expires in {left}."
        )
    if gate_open(r):
        return "Flagger's `confirm-*` webhooks are answered 200 for this checksum."
    if gate_rejected(r):
        return (
            "Flagger's `rollback` webhook is answered 200: Flagger routes traffic back to "
            "the primary."
        )
    return None


# -- thread replies, one per event (the deploy flow's, in a gate's words) ---------------------


def approved_reply(r: Rollout, user: str, promotes: bool) -> str:
    if promotes:
        return (
            f":white_check_mark: Approved by <@{user}> ({len(r.approvals)} of "
            f"{r.approvals_needed}): the gate opens, and Flagger goes on at its next check."
        )
    return (
        f":ballot_box_with_check: Approved by <@{user}> ({len(r.approvals)} of "
        f"{r.approvals_needed}); waiting for another approver."
    )


def opened_reply(r: Rollout) -> str:
    return (
        ":unlock: The gate is open: Flagger's `confirm-*` webhooks are answered 200 for "
        f"checksum `{escape(r.checksum or '?')}`."
    )


def rejected_reply(r: Rollout, user: str) -> str:
    return (
        f":no_entry: Rejected by <@{user}>: Flagger's `rollback` webhook is answered 200 from now "
        "on, so Flagger stops the canary and routes all traffic back to the primary (if the "
        "Canary has a `rollback` webhook; without one it stays held at its gate)."
    )


def rollback_asked_reply(r: Rollout, user: str) -> str:
    return (
        f":rewind: <@{user}> asked to roll back: Flagger's `rollback` webhook is answered 200 "
        "from now on."
    )


def rolled_back_reply(r: Rollout) -> str:
    return ":leftwards_arrow_with_hook: The rollback webhook is open; Flagger's events follow here."


def expired_reply(r: Rollout) -> str:
    return (
        ":hourglass: The approval request expired; the gate stays closed and Flagger keeps "
        f"waiting. `/deploy promote {escape(r.service)}` asks again."
    )


def renewed_reply(r: Rollout, user: str) -> str:
    return (
        f":raised_hand: <@{user}> asked again for approval at Flagger's gate "
        f"({r.approvals_needed} needed)."
    )


def requested_reply(r: Rollout) -> str:
    return (
        f":raised_hand: Flagger asks at its `{escape(r.gate or 'confirm')}` webhook for canary "
        f"{escape(r.canary or r.service)} (checksum `{escape(r.checksum or '?')}`); "
        f"{counted(r.approvals_needed, 'approver')} needed."
    )


def superseded_reply(old: Rollout, new: Rollout) -> str:
    return (
        f":fast_forward: Flagger moved on: its webhooks now carry checksum "
        f"`{escape(new.checksum or '?')}` (a new revision, or this one's analysis started); "
        f"{new.id} asks about it."
    )


def finished_reply(r: Rollout, phase: str, said: str | None) -> str:
    detail = f" {escape(said[:EVENT_SHOWN])}" if said else ""
    if phase == "Succeeded":
        return f":white_check_mark: Flagger promoted the canary.{detail}"
    return f":x: Flagger failed the canary and routed traffic back to the primary.{detail}"
