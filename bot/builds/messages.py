"""Every word and block of the builds capability, reviewed in one place."""

from __future__ import annotations

import time
from datetime import timedelta
from enum import StrEnum
from typing import Any

from bot.builds.ports import TestSummary
from bot.builds.progress import FINAL, JobState, stages
from bot.durations import format_duration
from bot.replies import Reply, button, context, escape, mrkdwn_section

Blocks = list[dict[str, Any]]

_STATUS_EMOJI = {
    "success": ":white_check_mark:",
    "failed": ":x:",
    "canceled": ":no_entry_sign:",
    "skipped": ":fast_forward:",
    "running": ":arrows_counterclockwise:",
    "pending": ":hourglass_flowing_sand:",
    "created": ":hourglass_flowing_sand:",
    "canceling": ":no_entry_sign:",
    "manual": ":raised_hand:",
}


# How a status reads after "Pipeline #12 of acme/web": (verb, status word). Statuses are an open
# set (bot/builds/ports.py): one not named here is shown as it is, as a status.
_STATUS_WORDS = {
    "success": ("", "passed"),
    "failed": ("", "failed"),
    "canceled": ("was", "canceled"),
    "skipped": ("was", "skipped"),
    "running": ("is", "running"),
    "pending": ("is", "pending"),
    "created": ("was", "created"),
    "canceling": ("is", "being canceled"),
    "manual": ("is", "waiting for a manual job"),
    "scheduled": ("is", "scheduled"),
    "preparing": ("is", "preparing"),
    "waiting_for_resource": ("is", "waiting for a resource"),
}


def status_words(status: str, *, bold: bool = True) -> str:
    """`passed`, `is running`, `was canceled`; `has status weird` for one not known."""
    verb, word = _STATUS_WORDS.get(status, ("has status", escape(status)))
    shown = f"*{word}*" if bold else word
    return f"{verb} {shown}".strip()


class BuildAction(StrEnum):
    """action_ids of the live message's buttons (values: `<project path>|<pipeline id>`)."""

    CANCEL = "build_cancel"
    RETRY = "build_retry"


def emoji(status: str) -> str:
    return _STATUS_EMOJI.get(status, ":large_blue_circle:")


def _elapsed(record: dict[str, Any]) -> str:
    if record.get("duration"):
        seconds = float(record["duration"])
    elif record.get("started_at"):
        seconds = time.time() - float(record["started_at"])
    else:
        return "not started"
    return format_duration(timedelta(seconds=max(int(seconds), 0)))


def _jobs(record: dict[str, Any]) -> list[JobState]:
    return [JobState(**j) for j in record.get("jobs", [])]


def live_message(record: dict[str, Any], *, buttons: bool = True) -> tuple[str, Blocks]:
    """The pipeline's one message, updated in place until it ends."""
    status = str(record["status"])
    project, pid = record["project"], record["pipeline_id"]
    link = f"<{record['web_url']}|#{pid}>" if record.get("web_url") else f"#{pid}"
    head = f"{emoji(status)} Pipeline {link} of *{escape(project)}* {status_words(status)}"
    sha = str(record.get("sha") or "")[:8]
    who = f"<@{record['triggered_by']}>" if record.get("triggered_by") else "GitLab"
    fields = [
        {"type": "mrkdwn", "text": f"*Ref*\n`{escape(str(record['ref']))}`"},
        {"type": "mrkdwn", "text": f"*Commit*\n`{sha or '?'}`"},
        {"type": "mrkdwn", "text": f"*Triggered by*\n{who}"},
        {"type": "mrkdwn", "text": f"*Elapsed*\n{_elapsed(record)}"},
    ]
    blocks: Blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": head}, "fields": fields}
    ]
    stage_line = " → ".join(
        f"{emoji(state)} {escape(name)}" for name, state in stages(_jobs(record))
    )
    if stage_line:
        blocks.append(context(stage_line))
    if record.get("variables"):
        shown = ", ".join(f"`{escape(k)}`" for k in record["variables"])
        blocks.append(context(f"Variables: {shown}"))
    elements = []
    value = f"{project}|{pid}"
    if buttons and status not in FINAL:
        elements.append(button("Cancel", BuildAction.CANCEL, value, "danger"))
    if buttons and status == "failed":
        elements.append(button("Retry", BuildAction.RETRY, value, "primary"))
    if elements:
        blocks.append({"type": "actions", "block_id": "build_actions", "elements": elements})
    text = f"Pipeline #{pid} of {project} on {record['ref']} {status_words(status, bold=False)}"
    return text, blocks


def result_reply(record: dict[str, Any], tests: TestSummary | None) -> str:
    """The thread reply when the pipeline ends: result, duration, failed jobs, tests."""
    status = str(record["status"])
    lines = [
        f"{emoji(status)} Pipeline #{record['pipeline_id']} {status_words(status)} "
        f"after {_elapsed(record)}."
    ]
    # Only the newest attempt of each job counts: a job that failed and then passed on retry
    # did not fail this run.
    latest = {j.name: j for j in sorted(_jobs(record), key=lambda j: j.id)}
    failed = [j for j in latest.values() if j.status == "failed" and not j.allow_failure]
    if failed:
        lines.append("Failed jobs:")
        for job in failed:
            name = f"<{job.web_url}|{escape(job.name)}>" if job.web_url else escape(job.name)
            reason = f" ({escape(job.failure_reason)})" if job.failure_reason else ""
            lines.append(f"• {name} in stage `{escape(job.stage)}`{reason}")
    if tests is not None and tests.total:
        lines.append(
            f"Tests: {tests.success} passed, {tests.failed} failed, {tests.skipped} skipped, "
            f"{tests.error} errors of {tests.total}."
        )
    return "\n".join(lines)


def status_reply(record: dict[str, Any]) -> Reply:
    text, blocks = live_message(record, buttons=False)
    return Reply(text=text, blocks=blocks)


def failed_elsewhere(record: dict[str, Any]) -> tuple[str, Blocks]:
    text, blocks = live_message(record, buttons=False)
    note = mrkdwn_section(
        f":rotating_light: The default branch `{escape(str(record['ref']))}` of "
        f"*{escape(str(record['project']))}* failed."
    )
    return f"Default branch failed: {text}", [note, *blocks]


def cancelled_reply(user: str) -> str:
    return f":no_entry_sign: Cancelled by <@{user}>."


def retried_reply(user: str) -> str:
    return f":repeat: Retried by <@{user}>."
