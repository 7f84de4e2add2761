"""Every word and block of the deploys capability, reviewed in one place."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from bot.alerting.last_change import AlertLink
from bot.deploys import gate_messages
from bot.deploys.evidence_messages import evidence_blocks
from bot.deploys.ports import Snapshot
from bot.deploys.rollout import (
    AWAITING,
    COMPLETE,
    FAILED,
    PROMOTING,
    ROLLED_BACK,
    ROLLING_BACK,
    Rollout,
    describe_state,
)
from bot.durations import format_duration
from bot.replies import Reply, button, context, counted, escape, mrkdwn_section

Blocks = list[dict[str, Any]]
MAX_UNITS_SHOWN = 20

_STATE_EMOJI = {
    AWAITING: ":raised_hand:",
    PROMOTING: ":arrows_counterclockwise:",
    ROLLING_BACK: ":rewind:",
    COMPLETE: ":white_check_mark:",
    ROLLED_BACK: ":leftwards_arrow_with_hook:",
    FAILED: ":x:",
}


class DeployAction(StrEnum):
    """action_ids of the approval message's buttons (value: `<service>|<rollout id>|<step>`)."""

    APPROVE = "deploy_approve"
    REJECT = "deploy_reject"


def button_value(r: Rollout) -> str:
    # The step is part of the value: a click that arrives late must not approve the next step.
    return f"{r.service}|{r.id}|{r.step}"


def _step_words(r: Rollout) -> tuple[str, str]:
    total = len(r.percents)
    now = f"{r.percent}% (step {r.step + 1} of {total})" if r.step >= 0 else "not started"
    if r.first:
        now = "100% (first deploy, full size)" if r.state == COMPLETE else "first deploy"
    nxt = r.next_percent
    later = "none: this is the last step" if nxt is None else f"{nxt}%"
    if r.state in (COMPLETE, ROLLED_BACK):
        later = "none"
    if r.state == ROLLED_BACK:
        now = f"rolled back to {_stable(r)}"
    return now, later


_JOB_EMOJI = {
    "success": ":large_green_circle:",
    "failed": ":red_circle:",
    "canceled": ":red_circle:",
    "manual": ":white_circle:",
    "skipped": ":white_circle:",
}


def _units(snapshot: Snapshot, version: str) -> str:
    """Containers with their health, or a pipeline's jobs (a snapshot with a link), under
    the system's own view of the rollout when it gives one (`detail`)."""
    pipeline = snapshot.link is not None
    lines = [escape(snapshot.detail)] if snapshot.detail else []
    if not snapshot.units:
        if pipeline:
            lines.append(f"<{snapshot.link}|Pipeline>")
        return "\n".join(lines) or "nothing runs"
    for unit in snapshot.units[:MAX_UNITS_SHOWN]:
        name = f"<{unit.url}|{escape(unit.name)}>" if unit.url else f"`{escape(unit.name)}`"
        if pipeline:  # a job not played yet is waiting, not failing
            mark = _JOB_EMOJI.get(unit.status, ":large_orange_circle:")
            lines.append(f"{mark} {name}: {escape(unit.status)}")
            continue
        mark = ":large_green_circle:" if unit.ok else ":red_circle:"
        tag = " *(new)*" if unit.version == version else ""
        lines.append(f"{mark} {name} {escape(unit.version)}{tag}: {escape(unit.status)}")
    if len(snapshot.units) > MAX_UNITS_SHOWN:
        lines.append(f"… and {len(snapshot.units) - MAX_UNITS_SHOWN} more")
    if pipeline:
        lines.append(f"<{snapshot.link}|Pipeline>")
    return "\n".join(lines)


def _heading(snapshot: Snapshot) -> str:
    if snapshot.heading:
        return snapshot.heading
    return "Pipeline jobs" if snapshot.link is not None else "Containers"


def _stable(r: Rollout) -> str:
    # Without a stable version a Docker rollout is a first deploy; GitLab cannot tell.
    return escape(r.stable) if r.stable else ("nothing" if r.first else "unknown")


def alert_links_line(links: list[AlertLink]) -> str:
    """The alert groups on the service, each linked to its message, and where each stands."""
    parts = []
    for link in links:
        ref = f"<{link.permalink}|{link.ref}>" if link.permalink else link.ref
        state = "firing" if link.firing else "resolved"
        if link.acked_by:
            state += f", acknowledged by <@{link.acked_by}>"
        elif link.firing:
            state += ", unacknowledged"
        parts.append(f"{ref} {escape(link.title)} ({state})")
    return ":rotating_light: *Alerts on this service:* " + " · ".join(parts)


def with_alert_links(message: tuple[str, Blocks], links: list[AlertLink]) -> tuple[str, Blocks]:
    """The rollout's message with the open alert groups on its service linked, above its
    buttons (bot/deploys/alert_links.py)."""
    text, blocks = message
    if links:
        at = len(blocks) - (1 if blocks and blocks[-1].get("type") == "actions" else 0)
        blocks.insert(at, context(alert_links_line(links)))
    return text, blocks


def approval_message(
    r: Rollout, snapshot: Snapshot, alerts: list[str], now: float
) -> tuple[str, Blocks]:
    """The rollout's one message, edited in place after every decision."""
    if r.checksum is not None:  # a request of Flagger's gate: its own words, the same buttons
        return _gate_message(r, alerts, now)
    emoji = _STATE_EMOJI.get(r.state, ":large_blue_circle:")
    stable = _stable(r)
    head = (
        f"{emoji} Deploy *{escape(r.service)}* `{escape(r.version)}` ({r.id}): "
        f"{escape(describe_state(r))}"
    )
    now_step, next_step = _step_words(r)
    approvals = f"{len(r.approvals)} of {r.approvals_needed}"
    if r.approvals:
        approvals += ": " + ", ".join(f"<@{u}>" for u in r.approvals)
    if not r.active:  # who approved each step is in the thread and the audit log
        approvals = f"{r.approvals_needed} per step"
    fields = [
        {"type": "mrkdwn", "text": f"*Service*\n{escape(r.service)}"},
        {"type": "mrkdwn", "text": f"*Version*\n`{stable}` → `{escape(r.version)}`"},
        {"type": "mrkdwn", "text": f"*Current step*\n{now_step}"},
        {"type": "mrkdwn", "text": f"*Next step*\n{next_step}"},
        {"type": "mrkdwn", "text": f"*Asked by*\n<@{r.started_by}>"},
        {"type": "mrkdwn", "text": f"*Approvals*\n{approvals}"},
    ]
    blocks: Blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": head}, "fields": fields},
        mrkdwn_section(f"*{_heading(snapshot)}*\n{_units(snapshot, r.version)}"),
        *evidence_blocks(r),
    ]
    if alerts:
        blocks.append(
            mrkdwn_section(
                ":rotating_light: *Firing, unacknowledged:* "
                + ", ".join(escape(a) for a in alerts)
                + ". Approval is blocked until acknowledged."
            )
        )
    if r.state == AWAITING and r.expired:
        blocks.append(
            context(
                ":hourglass: This approval request expired; the canary is held. A deployer can "
                f"ask again with `/deploy promote {escape(r.service)}` or roll back with "
                f"`/deploy rollback {escape(r.service)}`."
            )
        )
    elif r.state == AWAITING and r.expires_at is not None:
        left = format_duration(timedelta(seconds=max(int(r.expires_at - now), 0)))
        blocks.append(context(f"Approval request expires in {left}."))
    if r.state == FAILED and r.error:
        blocks.append(
            context(
                f":x: {escape(r.error)}\nA deployer can try the step again with "
                f"`/deploy promote {escape(r.service)}` or `/deploy rollback {escape(r.service)}`."
            )
        )
    elements = []
    if r.state == AWAITING and not r.expired:
        elements.append(button("Approve", DeployAction.APPROVE, button_value(r), "primary"))
    if r.state in (AWAITING, FAILED):
        elements.append(button("Reject", DeployAction.REJECT, button_value(r), "danger"))
    if elements:
        blocks.append({"type": "actions", "block_id": "deploy_actions", "elements": elements})
    text = f"Deploy {r.service} {r.version} ({r.id}): {describe_state(r)}"
    return text, blocks


def _gate_message(r: Rollout, alerts: list[str], now: float) -> tuple[str, Blocks]:
    text, blocks = gate_messages.gate_message(r, alerts, now)
    elements = []
    if gate_messages.asks(r) and r.state == AWAITING and not r.expired:
        elements.append(button("Approve", DeployAction.APPROVE, button_value(r), "primary"))
    if gate_messages.asks(r) and r.state in (AWAITING, FAILED):
        elements.append(button("Reject", DeployAction.REJECT, button_value(r), "danger"))
    if elements:
        blocks.append({"type": "actions", "block_id": "deploy_actions", "elements": elements})
    return text, blocks


# -- thread replies, one per event --------------------------------------------------------------


def requested_reply(r: Rollout) -> str:
    asked = f":rocket: <@{r.started_by}> asked to deploy `{escape(r.version)}`."
    if r.step < 0 and r.state == AWAITING:
        return (
            f"{asked} Nothing changes until {counted(r.approvals_needed, 'approver')} "
            f"{'approves' if r.approvals_needed == 1 else 'approve'} going to {r.next_percent}%."
        )
    return (
        f"{asked} It starts at {r.percents[0]}% now; each next step needs "
        f"{counted(r.approvals_needed, 'approval')} from approvers."
    )


def first_deploy_reply(r: Rollout) -> str:
    return (
        f":rocket: Nothing of {escape(r.service)} runs yet, so `{escape(r.version)}` starts at "
        "full size with no approval (there is nothing to protect)."
    )


def approved_reply(r: Rollout, user: str, promotes: bool) -> str:
    if r.checksum is not None:
        return gate_messages.approved_reply(r, user, promotes)
    if promotes:
        return (
            f":white_check_mark: Approved by <@{user}> ({len(r.approvals)} of "
            f"{r.approvals_needed}); promoting to {r.percents[r.target]}%."
        )
    return (
        f":ballot_box_with_check: Approved by <@{user}> ({len(r.approvals)} of "
        f"{r.approvals_needed}); waiting for another approver."
    )


def step_reply(r: Rollout, snapshot: Snapshot) -> str:
    if r.checksum is not None:
        return gate_messages.opened_reply(r)
    ready = sum(1 for u in snapshot.units if u.version == r.version and u.ok)
    total = len(snapshot.units)
    containers = total and snapshot.link is None and snapshot.heading is None
    runs = f" {ready} of {total} containers run `{escape(r.version)}`." if containers else ""
    if snapshot.detail:
        runs = f" {escape(snapshot.detail)}"
    if r.state == COMPLETE:
        return f":white_check_mark: Complete: `{escape(r.version)}` is stable.{runs}"
    return (
        f":arrow_up: Step {r.step + 1} of {len(r.percents)}: {r.percent}% done.{runs} "
        f"Next: {r.next_percent}%, waiting for {counted(r.approvals_needed, 'approval')}."
    )


def rejected_reply(r: Rollout, user: str) -> str:
    if r.checksum is not None:
        return gate_messages.rejected_reply(r, user)
    return f":no_entry: Rejected by <@{user}>; rolling back to `{_stable(r)}`."


def rollback_asked_reply(r: Rollout, user: str) -> str:
    if r.checksum is not None:
        return gate_messages.rollback_asked_reply(r, user)
    return f":rewind: <@{user}> asked to roll back to `{_stable(r)}`."


def rolled_back_reply(r: Rollout, snapshot: Snapshot) -> str:
    if r.checksum is not None:
        return gate_messages.rolled_back_reply(r)
    if snapshot.link is not None or not snapshot.units or snapshot.heading is not None:
        return f":leftwards_arrow_with_hook: Rolled back to `{_stable(r)}`."
    total = len(snapshot.units)
    runs = f"{counted(total, 'container')} {'runs' if total == 1 else 'run'}"
    return f":leftwards_arrow_with_hook: Rolled back: {runs} `{_stable(r)}`."


def failed_reply(r: Rollout) -> str:
    return (
        f":x: The step failed: {escape(r.error or 'unknown error')}. What ran before keeps "
        f"running. `/deploy promote {escape(r.service)}` tries again; "
        f"`/deploy rollback {escape(r.service)}` goes back."
    )


def expired_reply(r: Rollout) -> str:
    if r.checksum is not None:
        return gate_messages.expired_reply(r)
    return (
        f":hourglass: The approval request expired; the canary is held at {r.percent}%. "
        f"`/deploy promote {escape(r.service)}` asks again."
    )


def renewed_reply(r: Rollout, user: str) -> str:
    if r.checksum is not None:
        return gate_messages.renewed_reply(r, user)
    return (
        f":raised_hand: <@{user}> asked again for approval to go to {r.next_percent}% "
        f"({r.approvals_needed} needed)."
    )


def retry_reply(user: str) -> str:
    return f":repeat: <@{user}> is trying the step again."


def _who(started_by: str) -> str:
    """A person as a mention; a system that started a rollout (Flagger) by its name."""
    return f"<@{started_by}>" if started_by[:1] in ("U", "W") else escape(started_by)


def restart_reply(r: Rollout, user: str) -> str:
    return (
        f":repeat: <@{user}> is starting `{escape(r.version)}` again from its first step "
        f"({r.percents[0]}%); each next step needs {counted(r.approvals_needed, 'approval')} "
        "again."
    )


def gave_up_reply(r: Rollout) -> str:
    return (
        f":x: {escape(r.error or 'the system gave up on this rollout')}. "
        f"`/deploy promote {escape(r.service)}` tries again; "
        f"`/deploy rollback {escape(r.service)}` goes back."
    )


def status_reply(rows: list[tuple[str, Rollout | None, Snapshot | None]], now: float) -> Reply:
    """`/deploy status [service]`: each service's latest rollout and what runs."""
    lines = []
    blocks: Blocks = []
    for name, rollout, snapshot in rows:
        if rollout is None:
            line = f"*{escape(name)}*: no rollout yet"
        else:
            age = format_duration(timedelta(seconds=max(int(now - rollout.started_at), 0)))
            mark = _STATE_EMOJI.get(rollout.state, "")
            line = (
                f"{mark} *{escape(name)}* `{escape(rollout.version)}`"
                f" ({rollout.id}, by {_who(rollout.started_by)}, {age} ago): "
                f"{escape(describe_state(rollout))}"
            )
        lines.append(line)
        blocks.append(mrkdwn_section(line))
        if snapshot is not None:
            blocks.append(mrkdwn_section(_units(snapshot, rollout.version if rollout else "")))
    if not rows:
        text = "No services are configured: add them under `services:` in the YAML file."
        return Reply(text=text)
    return Reply(text="\n".join(lines), blocks=blocks[:50])
