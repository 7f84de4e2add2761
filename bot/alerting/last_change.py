"""The last change on an alert: which services an alert group is about, and the words and the
Roll back button that show each one's latest rollout on the group's message.

Pure, so both families can use it: the deploy gate (bot/deploys/service.py) judges which open
groups block an approval by `carries`, and the alert message shows the rollouts of the same
services. The two messages follow each other through two small jobs, named here: a rollout that
moves re-renders the matching alert messages (`ALERT_RENDER_JOB`, run by commands/alerts.py),
and an alert group that opens, is acknowledged or resolves re-renders the service's rollout
message (`ROLLOUT_RENDER_JOB`, run by commands/deploy.py). Neither re-render calls the other
back, so the two never ping-pong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from bot.alerting.groups import AlertGroup
from bot.alerting.routing import labels_match
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
from bot.replies import button, escape, mrkdwn_section

Blocks = list[dict[str, Any]]

MAX_SERVICES_SHOWN = 3  # an alert matching many services shows the first few
ALERT_RENDER_JOB = "alerts.render"
ROLLOUT_RENDER_JOB = "deploys.render_for_alerts"


class LastChangeAction(StrEnum):
    """action_id of the Roll back button (value: `<service>|<rollout id>|<AL-n>`)."""

    ROLL_BACK = "alert_roll_back"


def carries(group: AlertGroup, wanted: Mapping[str, str], *, firing_only: bool = True) -> bool:
    """Whether the group is about a service with these `alert_labels`: one of its alerts
    (a firing one, unless `firing_only` is off) carries every wanted label. No labels: never
    (a service without `alert_labels` is about no alert)."""
    if not wanted:
        return False
    return any(
        (a.status == "firing" or not firing_only) and labels_match(a.labels, dict(wanted))
        for a in group.alerts.values()
    )


def matching_services(
    group: AlertGroup, alert_labels: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """The services (name -> their alert_labels) the group is about, the first few by name.
    Resolved alerts count too, so that a resolved group keeps showing what it showed."""
    found = [
        n for n, wanted in sorted(alert_labels.items()) if carries(group, wanted, firing_only=False)
    ]
    return found[:MAX_SERVICES_SHOWN]


def button_value(r: Rollout, ref: str) -> str:
    return f"{r.service}|{r.id}|{ref}"


def parse_value(value: str) -> tuple[str, str, str] | None:
    """(service, rollout id, AL-n) of a Roll back button, or None for anything else."""
    parts = value.split("|")
    if len(parts) != 3 or not all(parts) or not parts[1].startswith("D-"):
        return None
    if not parts[2].startswith("AL-"):
        return None
    return parts[0], parts[1], parts[2]


def may_roll_back(r: Rollout) -> bool:
    """The states `/deploy rollback` accepts (bot/deploys/rollout.py `roll_back`)."""
    if r.state in (PROMOTING, ROLLING_BACK, ROLLED_BACK):
        return False
    return not (r.state == COMPLETE and r.first)


def _before(r: Rollout) -> str:
    """What a rollback goes back to: the stable version, or (a system that cannot say what
    runs, e.g. GitLab) what ran before."""
    return f"`{escape(r.stable)}`" if r.stable else "what ran before"


def _who(user: str) -> str:
    """A person as a mention; a system that started a rollout (Flagger) by its name."""
    return f"<@{user}>" if user[:1] in ("U", "W") else escape(user)


def approvers(r: Rollout) -> list[str]:
    """Everyone who approved a step of the rollout, in the order they first did."""
    seen: list[str] = []
    for entry in r.history:
        for user in entry.get("approved_by") or []:
            if user not in seen:
                seen.append(user)
    for user in r.approvals:  # approvals of the step now waiting
        if user not in seen:
            seen.append(user)
    return seen


def _ago(seconds: float) -> str:
    return format_duration(timedelta(seconds=abs(int(seconds))))


def _when(r: Rollout, alert_start: float) -> str:
    """Where the rollout stands, against when the alert started."""
    if r.state == COMPLETE and r.finished_at is not None:
        gap = alert_start - r.finished_at
        if gap >= 0:
            return f"completed {_ago(gap)} before the alert"
        return f"completed {_ago(gap)} after the alert started"
    if r.state in (AWAITING, PROMOTING):
        start = alert_start - r.started_at
        when = f"started {_ago(start)} {'before' if start >= 0 else 'after'} the alert"
        step = f"step {r.step + 1} of {len(r.percents)}" if r.step >= 0 else "no step yet"
        waiting = ", awaiting approval" if r.state == AWAITING and not r.expired else ""
        return f"*in progress*: {step}{waiting} ({escape(describe_state(r))}; {when})"
    if r.state == ROLLING_BACK:
        by = f" by {_who(r.ended_by)}" if r.ended_by else ""
        return f"*rolling back*{by} to {_before(r)}"
    if r.state == ROLLED_BACK:
        by = f" by {_who(r.ended_by)}" if r.ended_by else ""
        return f"*rolled back*{by} to {_before(r)}"
    if r.state == FAILED:
        return f"*{escape(describe_state(r))}*"
    return escape(describe_state(r))


def change_line(r: Rollout, alert_start: float) -> str:
    """e.g. `Last change: api 1.2.0 (D-7) by @alice, approved by @bob, completed 4m before
    the alert`."""
    approved = approvers(r)
    if approved:
        by = ", approved by " + ", ".join(_who(u) for u in approved)
    elif r.first:
        by = ", no approval (first deploy)"
    else:
        by = ", not approved yet" if r.state in (AWAITING, PROMOTING) else ""
    return (
        f":package: *Last change:* {escape(r.service)} `{escape(r.version)}` ({r.id}) "
        f"by {_who(r.started_by)}{by}, {_when(r, alert_start)}"
    )


def section(group: AlertGroup, rollouts: list[Rollout]) -> Blocks:
    """The last change of each service the group is about, each with its Roll back button
    while the group is open and rolling back is possible (deployers only: the click says so
    to anyone else). Nothing at all when no service has a rollout."""
    blocks: Blocks = []
    for r in rollouts[:MAX_SERVICES_SHOWN]:
        block = mrkdwn_section(change_line(r, group.started_at))
        if group.is_open and may_roll_back(r):
            label = f"Roll back {r.service}"[:75]
            block["accessory"] = button(
                label, LastChangeAction.ROLL_BACK, button_value(r, group.ref), "danger"
            )
        blocks.append(block)
    return blocks


def rolled_back_reply(r: Rollout, user: str) -> str:
    """In the alert's thread, after a Roll back click."""
    return (
        f":rewind: <@{user}> is rolling {escape(r.service)} back from `{escape(r.version)}` to "
        f"{_before(r)} ({r.id}); the rollout's thread in <#{r.channel}> follows it."
    )


@dataclass(frozen=True)
class AlertLink:
    """An open alert group on a rollout's message: its reference, a link to its message when
    it has one, and where it stands."""

    ref: str
    title: str
    permalink: str
    firing: bool
    acked_by: str | None


def link_of(group: AlertGroup, permalink: str) -> AlertLink:
    return AlertLink(
        ref=group.ref,
        title=group.title,
        permalink=permalink,
        firing=group.is_open,
        acked_by=group.acked_by,
    )
