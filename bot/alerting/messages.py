"""Every word and block the alert capability shows in Slack, reviewed in one place."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from bot.alerting import last_change
from bot.alerting.groups import AlertGroup, Change, TrackedAlert
from bot.deploys.rollout import Rollout
from bot.durations import format_duration
from bot.replies import Reply, clock, context, counted, escape, mrkdwn_section, sections
from bot.store.alerts import Storm

Blocks = list[dict[str, Any]]
# Labels every alert of a group shares are shown once; these are shown elsewhere already.
_SHOWN_ELSEWHERE = frozenset({"alertname", "severity"})
_MAX_ALERTS_LISTED = 10


class AlertAction(StrEnum):
    """action_ids of the alert message's buttons (values carry the AL-<n> reference)."""

    ACK = "alert_ack"
    UNACK = "alert_unack"
    SILENCE_1H = "alert_silence_1h"
    SILENCE_4H = "alert_silence_4h"
    SILENCE_1D = "alert_silence_1d"
    CREATE_TASK = "alert_create_task"


SILENCE_DURATIONS = {
    AlertAction.SILENCE_1H: timedelta(hours=1),
    AlertAction.SILENCE_4H: timedelta(hours=4),
    AlertAction.SILENCE_1D: timedelta(days=1),
}


def _url(url: str) -> str:
    """A URL inside `<url|label>`: these three would end or split the link."""
    return url.replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")


def lasted(group: AlertGroup) -> str:
    """How long a resolved group was firing."""
    seconds = max((group.resolved_at or group.updated_at) - group.started_at, 0)
    return format_duration(timedelta(seconds=seconds))


def mention(principal: str) -> str:
    return f"<!subteam^{principal}>" if principal.startswith("S") else f"<@{principal}>"


def _emoji(group: AlertGroup) -> str:
    if not group.is_open:
        return ":large_green_circle:"
    return (
        ":red_circle:"
        if group.severity in ("critical", "page", "error")
        else ":large_orange_circle:"
    )


def headline(group: AlertGroup) -> str:
    state = f"FIRING:{len(group.firing)}" if group.is_open else "RESOLVED"
    return f"[{state}] {group.title}"[:150]


def alert_name(group: AlertGroup, alert: TrackedAlert) -> str:
    """What tells this alert apart from the others in its group (e.g. `instance=web-2`)."""
    own = {k: v for k, v in alert.labels.items() if group.common_labels.get(k) != v}
    if not own:
        return escape(alert.labels.get("instance") or alert.fingerprint)
    return escape(", ".join(f"{k}={v}" for k, v in sorted(own.items())))


def _alertmanager_link(group: AlertGroup) -> str:
    if not group.external_url:
        return ""
    labels = group.group_labels or group.common_labels
    matchers = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{group.external_url.rstrip('/')}/#/alerts?filter={quote('{' + matchers + '}')}"


def _links(group: AlertGroup) -> str:
    links = []
    source = next((a.generator_url for a in group.alerts.values() if a.generator_url), "")
    if source:
        links.append(f"<{_url(source)}|Source>")
    if group.runbook_url:
        links.append(f"<{_url(group.runbook_url)}|Runbook>")
    named: dict[str, str] = {}  # a source's own links (a dashboard, a panel): the first of each
    for alert in group.alerts.values():
        for name, url in alert.links.items():
            if url:
                named.setdefault(name, url)
    links += [f"<{_url(url)}|{escape(name)}>" for name, url in named.items()]
    if am := _alertmanager_link(group):
        links.append(f"<{_url(am)}|Alertmanager>")
    return " · ".join(links)


def silencer(group: AlertGroup) -> str:
    """The system the group is silenced in, by name: the one it came from."""
    return group.source.capitalize()


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:.4g}"


def _values(group: AlertGroup) -> str:
    """What the rule evaluated for each firing alert, e.g. `B=0.93, C=1`."""
    lines = []
    for alert in group.firing[:_MAX_ALERTS_LISTED]:
        if alert.values:
            shown = ", ".join(f"{escape(k)}={_number(v)}" for k, v in sorted(alert.values.items()))
            who = f"{alert_name(group, alert)}: " if len(group.alerts) > 1 else ""
            lines.append(f"{who}`{shown}`")
    return ("Values: " + "; ".join(lines)) if lines else ""


def _ack_line(group: AlertGroup, now: float) -> str:
    parts = []
    if group.acked_by and group.acked_at:
        note = f": {group.ack_note}" if group.ack_note else ""
        parts.append(f":eyes: Acknowledged by <@{group.acked_by}> at {clock(group.acked_at)}{note}")
    if group.silence_id and group.silence_until and group.silence_until > now:
        who = f" by <@{group.silenced_by}>" if group.silenced_by else ""
        parts.append(
            f":mute: Silenced in {silencer(group)}{who} until {clock(group.silence_until)}"
        )
    return "\n".join(parts)


def _buttons(group: AlertGroup, tasks: bool) -> dict[str, Any]:
    def button(text: str, action: AlertAction, style: str | None = None) -> dict[str, Any]:
        b: dict[str, Any] = {
            "type": "button",
            "text": {"type": "plain_text", "text": text},
            "action_id": str(action),
            "value": group.ref,
        }
        if style:
            b["style"] = style
        return b

    first = (
        button("Unacknowledge", AlertAction.UNACK)
        if group.acked_by
        else button("Acknowledge", AlertAction.ACK, "primary")
    )
    elements = [
        first,
        button("Silence 1h", AlertAction.SILENCE_1H),
        button("Silence 4h", AlertAction.SILENCE_4H),
        button("Silence 1d", AlertAction.SILENCE_1D),
    ]
    if tasks:
        elements.append(button("Create task", AlertAction.CREATE_TASK))
    return {"type": "actions", "block_id": f"alert_actions:{group.ref}", "elements": elements}


def parent_message(
    group: AlertGroup, now: float, *, tasks: bool = False, changes: list[Rollout] | None = None
) -> tuple[str, Blocks]:
    """The group's one message, updated in place for its whole life; `tasks` (GitLab is
    configured) adds a Create task button; `changes`: the latest rollouts of the services the
    group is about (bot/alerting/last_change.py)."""
    summary = escape(group.summary)
    text = f"{group.ref} {escape(headline(group))}" + (f": {summary}" if summary else "")
    # plain_text: shown as it is, so not escaped. The title is said here only, once.
    blocks: Blocks = [{"type": "header", "text": {"type": "plain_text", "text": headline(group)}}]
    body = f"{_emoji(group)} *{group.ref}*" + (f" {summary}" if summary else "")
    fields = [
        {"type": "mrkdwn", "text": f"*Severity*\n{escape(group.severity) or 'none'}"},
        {
            "type": "mrkdwn",
            "text": f"*Alerts*\n{len(group.firing)} firing, {len(group.resolved)} resolved",
        },
        {"type": "mrkdwn", "text": f"*Started*\n{clock(group.started_at)}"},
    ]
    if not group.is_open and group.resolved_at:
        fields.append({"type": "mrkdwn", "text": f"*Resolved*\nafter {lasted(group)}"})
    blocks.append(
        {"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}, "fields": fields}
    )
    labels = {k: v for k, v in group.common_labels.items() if k not in _SHOWN_ELSEWHERE}
    if labels:
        shown = ", ".join(f"`{escape(k)}={escape(v)}`" for k, v in sorted(labels.items()))
        blocks.append(context(f"Labels: {shown}"))
    if len(group.alerts) > 1:
        firing = [alert_name(group, a) for a in group.firing][:_MAX_ALERTS_LISTED]
        if firing:
            blocks.append(context("Firing: " + ", ".join(firing)))
    if values := _values(group):
        blocks.append(context(values[:3000]))
    if links := _links(group):
        blocks.append(context(links))
    blocks += last_change.section(group, changes or [])
    if line := _ack_line(group, now):
        blocks.append(mrkdwn_section(line))
    if group.is_open:
        blocks.append(_buttons(group, tasks))
    else:
        blocks.append(context(":white_check_mark: Resolved. Nothing left to do here."))
    return text, blocks


def _names(group: AlertGroup, alerts: list[TrackedAlert]) -> str:
    names = [alert_name(group, a) for a in alerts[:_MAX_ALERTS_LISTED]]
    more = len(alerts) - len(names)
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def change_reply(group: AlertGroup, change: Change) -> str:
    """The one thread reply saying what a later notification changed."""
    lines = []
    if change.reopened:
        lines.append(":rotating_light: Firing again.")
    if change.new_firing:
        n = len(change.new_firing)
        lines.append(f":fire: {counted(n, 'new alert')} firing: {_names(group, change.new_firing)}")
    if change.resolved and not change.group_resolved:
        n = len(change.resolved)
        lines.append(f":white_check_mark: {n} resolved: {_names(group, change.resolved)}")
    if change.group_resolved:
        lines.append(f":white_check_mark: All alerts resolved after {lasted(group)}.")
    return "\n".join(lines)


def resolved_while_silenced_reply(group: AlertGroup) -> str:
    return (
        f":white_check_mark: Resolved (opsloop noticed it in {silencer(group)} while the group "
        f"was silenced, so {silencer(group)} sent no notification); the silence was removed."
    )


def ack_reply(group: AlertGroup, silence_problem: str | None) -> str:
    note = f": {group.ack_note}" if group.ack_note else ""
    text = f":eyes: Acknowledged by <@{group.acked_by}>{note}"
    if group.silence_id and group.silence_until:
        text += f"\n:mute: Silenced in {silencer(group)} until {clock(group.silence_until)}."
    elif silence_problem:
        text += f"\n:warning: {silence_problem}"
    return text


def unack_reply(user: str) -> str:
    return f":leftwards_arrow_with_hook: Unacknowledged by <@{user}>; the silence was removed."


def unack_refused(group: AlertGroup) -> str:
    return (
        f"{group.ref} was acknowledged by <@{group.acked_by}>: only they or an approver may "
        "unacknowledge it."
    )


def silence_reply(group: AlertGroup, user: str, duration: timedelta) -> str:
    until, length = clock(group.silence_until or 0), format_duration(duration)
    return f":mute: Silenced in {silencer(group)} by <@{user}> for {length} (until {until})."


def escalation_reply(group: AlertGroup, mentions: list[str], waited: float) -> str:
    who = " ".join(mention(m) for m in mentions) or "<!here>"
    age = format_duration(timedelta(seconds=waited))
    return (
        f":rotating_light: {who} {group.ref} *{escape(group.title)}* has been firing for {age} "
        "and nobody has acknowledged it."
    )


def storm_message(storm: Storm, channel: str, threshold: int) -> tuple[str, Blocks]:
    """One summary, updated in place, instead of one message per group during a storm."""
    open_ = max(storm.members - storm.resolved, 0)
    text = (
        f"Alert storm: {storm.members} new alert groups since {clock(storm.started_at)} "
        f"({open_} open, {storm.acked} acknowledged, {storm.resolved} resolved)"
    )
    recent = "\n".join(f"• {line}" for line in storm.recent) or "•"
    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": ":rotating_light: Alert storm"}},
        mrkdwn_section(
            f"*{storm.members}* new alert groups in <#{channel}> since {clock(storm.started_at)}: "
            f"*{open_}* open, *{storm.acked}* acknowledged, *{storm.resolved}* resolved."
        ),
        mrkdwn_section(f"*Newest*\n{recent}"),
        context(
            f"To keep this channel readable, groups beyond {threshold} a minute are summed up "
            "here. `/alerts` lists every open group; `/ack AL-<n> [note]` acknowledges one."
        ),
    ]
    return text, blocks


def storm_line(group: AlertGroup) -> str:
    summary = f": {escape(group.summary)}" if group.summary else ""
    return f"*{group.ref}* {escape(group.title)}{summary}"[:200]


def storm_escalation_reply(open_count: int, mentions: list[str], waited: float) -> str:
    who = " ".join(mention(m) for m in mentions) or "<!here>"
    age = format_duration(timedelta(seconds=waited))
    return (
        f":rotating_light: {who} {open_count} alert groups of this storm are still open after "
        f"{age} and not acknowledged. `/alerts` lists them."
    )


def alerts_list(groups: list[AlertGroup], channel: str, now: float) -> Reply:
    """`/alerts`: open groups, this channel's first."""
    if not groups:
        return Reply(text=":white_check_mark: No open alert groups.")
    ordered = sorted(groups, key=lambda g: (g.channel != channel, -g.first_seen))
    lines = []
    for g in ordered[:40]:
        age = format_duration(timedelta(seconds=max(now - g.started_at, 0)))
        acked = f" · acked by <@{g.acked_by}>" if g.acked_by else ""
        where = f" · <#{g.channel}>" if g.channel and g.channel != channel else ""
        title = escape(g.title)
        lines.append(f"*{g.ref}* {title} · {len(g.firing)} firing · {age}{acked}{where}")
    more = f"\n…and {len(ordered) - 40} more." if len(ordered) > 40 else ""
    title = counted(len(groups), "open alert group")
    text = f"*{title}*\n" + "\n".join(lines) + more
    blocks: Blocks = [{"type": "header", "text": {"type": "plain_text", "text": title}}]
    blocks += sections(lines, more)
    blocks.append(context("`/ack AL-<n> [note]` acknowledges a group."))
    return Reply(text=text, blocks=blocks)


def ack_confirmation(group: AlertGroup, silence_problem: str | None) -> str:
    text = f":eyes: You acknowledged {group.ref} *{escape(group.title)}*."
    if group.silence_id and group.silence_until:
        text += f" It is silenced in {silencer(group)} until {clock(group.silence_until)}."
    elif silence_problem:
        text += f"\n:warning: {silence_problem}"
    return text


def already_acked(group: AlertGroup) -> str:
    when = clock(group.acked_at or 0)
    title = escape(group.title)
    return f"{group.ref} *{title}* was already acknowledged by <@{group.acked_by}> at {when}."
