"""Tasks made from something already in Slack: any message (the message shortcut) or an alert
group (its Create task button). Both open the task form prefilled from their source, with a
project picker, so they work in a channel without a project of its own (#alerts); the form
remembers the source, and its submission (commands/task.py) files the issue with a link back to
the Slack thread and posts the issue's link in that thread."""

from __future__ import annotations

from typing import Any

from bot.alerting.groups import AlertGroup, TrackedAlert
from bot.config_file import Project
from bot.deps import Deps
from bot.errors import IntegrationError, UserError
from bot.tasks import messages
from bot.tasks.messages import Source

MAX_TITLE = 120


def form(
    deps: Deps,
    channel: str,
    *,
    title: str = "",
    description: str = "",
    source: Source | None = None,
) -> dict[str, Any]:
    """The task form for `channel`: its project preselected, else the only one there is; a
    UserError when no task can be filed at all."""
    if deps.tasks is None:
        raise UserError(deps.systems.missing("tasks"))
    projects = deps.config.projects
    if not projects:
        raise UserError(
            "No projects are configured, so there is nowhere to file a task.",
            "Add them to the YAML file, e.g. `projects: {web: {gitlab: acme/web}}`.",
        )
    return messages.modal(
        projects,
        channel=channel,
        initial_project=initial_project(projects, channel),
        title=title,
        description=description,
        source=source,
    )


def initial_project(projects: dict[str, Project], channel: str) -> str | None:
    """The channel's own project, else the only project; None when the person must pick."""
    mine = [alias for alias, p in projects.items() if p.channel == channel]
    if len(mine) == 1:
        return mine[0]
    if len(projects) == 1:
        return next(iter(projects))
    return None


def title_from(text: str) -> str:
    """A message's first line, shortened to fit a title."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(first) > MAX_TITLE:
        first = first[: MAX_TITLE - 1].rstrip() + "…"
    return first or "Task from a Slack message"


def message_form(deps: Deps, channel: str, ts: str, thread_ts: str, text: str) -> dict[str, Any]:
    """The form for "Create task from message": its first line as the title, its text as the
    description; the issue's link goes in the message's thread."""
    source = Source(thread_ts=thread_ts or ts, link_ts=ts)
    return form(deps, channel, title=title_from(text), description=text, source=source)


def _own_labels(group: AlertGroup, alert: TrackedAlert) -> str:
    own = {k: v for k, v in alert.labels.items() if group.common_labels.get(k) != v}
    if not own:
        return alert.labels.get("instance") or alert.fingerprint
    return ", ".join(f"{k}={v}" for k, v in sorted(own.items()))


def alert_description(group: AlertGroup) -> str:
    """What an issue about an alert group needs: severity, what fires, labels, annotations
    and links. Plain text: it is shown in the form and then in the tracker, not in Slack."""
    lines = [f"{group.ref} {group.title} (severity {group.severity or 'none'})"]
    if group.summary:
        lines += ["", group.summary]
    firing = ", ".join(_own_labels(group, a) for a in group.firing) or "none"
    lines += ["", f"Firing: {firing}"]
    labels = ", ".join(f"{k}={v}" for k, v in sorted(group.common_labels.items()))
    if labels:
        lines.append(f"Labels: {labels}")
    for name, value in sorted(group.common_annotations.items()):
        if name not in ("summary", "runbook_url") and value:
            lines.append(f"{name.capitalize()}: {value}")
    if group.runbook_url:
        lines.append(f"Runbook: {group.runbook_url}")
    source = next((a.generator_url for a in group.alerts.values() if a.generator_url), "")
    if source:
        lines.append(f"Source: {source}")
    return "\n".join(lines)


def alert_form(deps: Deps, group: AlertGroup, clicked_in: str) -> dict[str, Any]:
    """The form for an alert group's Create task button, filled in from the group."""
    channel = group.channel or clicked_in
    title = f"{group.ref} {group.title}" + (f": {group.summary}" if group.summary else "")
    source = Source(thread_ts=group.message_ts or "", link_ts=group.message_ts or "")
    return form(deps, channel, title=title, description=alert_description(group), source=source)


async def permalink(deps: Deps, channel: str, ts: str) -> str:
    """The message's link, or "" when Slack cannot give it: the issue is still worth filing."""
    try:
        data = await deps.slack.call("chat.getPermalink", channel=channel, message_ts=ts)
    except IntegrationError:
        return ""
    return str(data.get("permalink", ""))
