"""Wording and Block Kit of the delivery figures: `/ops dora` and the weekly digest."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.durations import format_duration
from bot.feedback.dora import Figures
from bot.replies import Reply, clock, context, counted, mrkdwn_section, sections

UNMEASURED_SHOWN = 10

# How opsloop measures each figure, beside DORA's own words (dora.dev/guides/dora-metrics).
DEFINITIONS = (
    "*Deployments*: rollouts that completed in the period, per day and per week "
    '(DORA: "the number of deployments over a given period").',
    "*Lead time*: from the oldest commit a rollout brought (GitLab's compare of the previous "
    "and the new version) to the rollout completing; median and 90th percentile "
    '(DORA: "from committed to version control to deployed in production").',
    "*Change failure rate*: of the rollouts that ended, those rejected, rolled back or failed, "
    "or followed by an alert on the service within {window} "
    '(DORA: "deployments that require immediate intervention").',
    "*Time to restore*: from a failed rollout or an alert firing to the service's next good "
    "state (rollback complete, a later rollout complete, the alert resolved); median "
    '(DORA: "the time it takes to recover from a deployment that fails").',
)


def _duration(seconds: float | None) -> str:
    return format_duration(timedelta(seconds=seconds)) if seconds is not None else "–"


def _rate(f: Figures) -> str:
    rate = f.failure_rate
    if rate is None:
        return "– (no rollout ended)"
    return f"{rate:.0%} ({len(f.failed)} of {f.ended})"


def line(name: str, f: Figures) -> str:
    """One service's four figures on one line."""
    restore = _duration(f.restore_median)
    if f.unrestored:
        restore += f", {counted(f.unrestored, 'failure')} not restored"
    return (
        f"*{name}*: {counted(f.deployments, 'deployment')} "
        f"({f.per_day:.2f}/day, {f.per_week:.1f}/week) · "
        f"lead time {_duration(f.lead_median)} (p90 {_duration(f.lead_p90)}, "
        f"{len(f.lead_times)} measured) · failure rate {_rate(f)} · "
        f"time to restore {restore}"
    )


def total(rows: dict[str, Figures], days: float) -> Figures:
    all_ = Figures(days=days)
    for f in rows.values():
        all_.add(f)
    return all_


def dora_reply(rows: dict[str, Figures], days: int, window: timedelta) -> Reply:
    title = f"Delivery figures, last {counted(days, 'day')}"
    lines = [line(name, f) for name, f in rows.items()]
    if len(rows) > 1:
        lines.append(line("All services", total(rows, days)))
    unmeasured = [u for f in rows.values() for u in f.unmeasured]
    notes = [
        f"{u.rollout} {u.service} `{u.version}`: {u.reason}" for u in unmeasured[:UNMEASURED_SHOWN]
    ]
    if len(unmeasured) > UNMEASURED_SHOWN:
        notes.append(f"…and {len(unmeasured) - UNMEASURED_SHOWN} more")
    definitions = [d.format(window=format_duration(window)) for d in DEFINITIONS]
    text = "\n".join([title, *lines])
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        *sections(lines),  # many services: several lines a section, under Slack's limits
    ]
    if notes:
        heading = "Lead time not measured for " + counted(len(unmeasured), "rollout")
        text += f"\n{heading}:\n" + "\n".join(notes)
        blocks.append(mrkdwn_section(f"*{heading}*:\n" + "\n".join(notes)))
    text += "\n" + "\n".join(definitions)
    blocks.append(context("\n".join(definitions)))
    return Reply(text=text, blocks=blocks)


def _change(now: float | None, before: float | None, fmt: str = "{:+.1f}") -> str:
    if now is None or before is None:
        return ""
    return " (" + fmt.format(now - before) + " on the week before)"


def digest_message(this: dict[str, Figures], before: dict[str, Figures], slot: float) -> Reply:
    """The weekly digest: the last 7 days' figures and their change from the 7 before."""
    now, then = total(this, 7), total(before, 7)
    title = f"Weekly delivery digest, the 7 days to {clock(slot, day=True)}"
    rate_now, rate_then = now.failure_rate, then.failure_rate
    rate_change = ""
    if rate_now is not None and rate_then is not None:
        rate_change = f" ({(rate_now - rate_then) * 100:+.0f} points on the week before)"
    lead_change = ""
    if now.lead_median is not None and then.lead_median is not None:
        delta = now.lead_median - then.lead_median
        sign = "+" if delta >= 0 else "-"
        lead_change = f" ({sign}{_duration(abs(delta))} on the week before)"
    summary = [
        f"*Deployments*: {now.deployments}{_change(now.deployments, then.deployments, '{:+.0f}')}",
        f"*Lead time (median)*: {_duration(now.lead_median)}{lead_change}",
        f"*Change failure rate*: {_rate(now)}{rate_change}",
        f"*Time to restore (median)*: {_duration(now.restore_median)}",
    ]
    per_service = [line(name, f) for name, f in this.items() if f.deployments or f.ended]
    text = "\n".join([title, *summary, *per_service])
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        mrkdwn_section("\n".join(summary)),
        *sections(per_service)[:40],
        context("How each is measured: `/ops dora`; docs/dora.md."),
    ]
    return Reply(text=text, blocks=blocks, in_channel=True)
