"""Tasks made from something already in Slack: any message (the message shortcut) or an alert
group (its Create task button). The issue links back to the Slack thread, and the thread gets a
link to the issue."""

from __future__ import annotations

from bot.alerting.messages import alert_name
from bot.errors import IntegrationError, UserError
from bot.jobs import JobContext
from bot.slack_once import post_once
from bot.slack_requests import ActionRequest, ShortcutRequest
from bot.tasks import messages
from bot.tasks.service import NewTask, TaskService

MAX_TITLE = 120


async def _permalink(job: JobContext, channel: str, ts: str) -> str:
    try:
        data = await job.deps.slack.call("chat.getPermalink", channel=channel, message_ts=ts)
    except IntegrationError:
        return ""  # the issue is still worth filing without the link
    return str(data.get("permalink", ""))


def _title_from(text: str) -> str:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(first) > MAX_TITLE:
        first = first[: MAX_TITLE - 1].rstrip() + "…"
    return first or "Task from a Slack message"


async def from_message(job: JobContext, request: ShortcutRequest) -> None:
    """ "Create task from message": the text and the message's permalink become an issue."""
    service = TaskService(job.deps)
    service.project_path(None, request.channel_id)  # a clear message before any other work
    link = await _permalink(job, request.channel_id, request.message_ts)
    description = request.message_text + (f"\n\n---\nFrom Slack: {link}" if link else "")
    task = NewTask(title=_title_from(request.message_text), project=None, description=description)
    issue = await service.create(
        task, creator=request.user_id, channel=request.channel_id, job_id=job.job_id
    )
    thread = request.thread_ts or request.message_ts
    await post_once(
        job.deps.slack,
        f"{job.job_id}:link",
        request.channel_id,
        messages.thread_link(issue),
        thread_ts=thread,
        settle_after=job.deps.settings.settle_seconds,
    )


async def from_alert(job: JobContext, request: ActionRequest) -> None:
    """An alert group's Create task button: its details and thread become an issue."""
    group = await job.deps.store.alerts.load(request.value)
    if group is None:
        raise UserError(f"`{request.value}` is not an alert group opsloop knows.")
    service = TaskService(job.deps)
    channel = group.channel or request.channel_id
    service.project_path(None, channel)
    link = await _permalink(job, channel, group.message_ts) if group.message_ts else ""
    lines = [
        f"**{group.title}** ({group.ref}, severity {group.severity or 'none'})",
        "",
        group.summary,
        "",
        "Firing: " + (", ".join(alert_name(group, a) for a in group.firing) or "none"),
        "Labels: " + ", ".join(f"`{k}={v}`" for k, v in sorted(group.common_labels.items())),
    ]
    if group.runbook_url:
        lines.append(f"Runbook: {group.runbook_url}")
    if link:
        lines.append(f"Slack thread: {link}")
    title = f"{group.ref} {group.title}" + (f": {group.summary}" if group.summary else "")
    task = NewTask(title=title[:255], project=None, description="\n".join(lines))
    issue = await service.create(task, creator=request.user_id, channel=channel, job_id=job.job_id)
    if group.message_ts:
        await post_once(
            job.deps.slack,
            f"{job.job_id}:link",
            channel,
            messages.thread_link(issue),
            thread_ts=group.message_ts,
            settle_after=job.deps.settings.settle_seconds,
        )
