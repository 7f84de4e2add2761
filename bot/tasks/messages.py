"""Every word and block of the task capability, reviewed in one place."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.config_file import Project
from bot.replies import Reply, clock, context, escape, sections
from bot.tasks.ports import CLOSED, Task

Blocks = list[dict[str, Any]]
MODAL_CALLBACK = "task_create"
SHORTCUT_CALLBACK = "task_from_message"


class TaskAction(StrEnum):
    """action_ids of the task message's buttons (values carry the task's full reference)."""

    ASSIGN_ME = "task_assign_me"
    CLOSE = "task_close"


class Field(StrEnum):
    """block_ids of the modal's inputs (each input's action_id is `value`)."""

    TITLE = "title"
    DESCRIPTION = "description"
    PROJECT = "project"
    LABELS = "labels"
    ASSIGNEE = "assignee"


# A modal that comes back in a shape opsloop did not make (a number for a text input, broken
# private_metadata): said under the input, so the person can fix it or start again.
ODD_INPUT = "opsloop cannot read what this input sent; type or pick it again."
ODD_METADATA = "This form lost the channel it was opened in; close it and type `/task` again."


@dataclass(frozen=True)
class Source:
    """The Slack message a form was opened from: the task's link goes in the thread
    `thread_ts`, and the issue links back to the message `link_ts`."""

    thread_ts: str
    link_ts: str


def _link(task: Task) -> str:
    return f"<{task.url}|{escape(task.reference)}>"


def task_message(task: Task, created_by: str | None) -> tuple[str, Blocks]:
    """The channel message of a task, updated in place when it is assigned or closed."""
    closed = task.state == CLOSED
    title = escape(task.title)
    head = (
        f":white_check_mark: {_link(task)} ~{title}~"
        if closed
        else f":memo: {_link(task)} *{title}*"
    )
    labels = ", ".join(f"`{escape(label)}`" for label in task.labels) or "none"
    assignee = ", ".join(f"@{escape(a)}" for a in task.shown_assignees) or "nobody yet"
    fields = [
        {"type": "mrkdwn", "text": f"*Labels*\n{labels}"},
        {"type": "mrkdwn", "text": f"*Assignee*\n{assignee}"},
        {"type": "mrkdwn", "text": f"*State*\n{'closed' if closed else 'open'}"},
    ]
    if created_by:
        fields.append({"type": "mrkdwn", "text": f"*Filed by*\n<@{created_by}>"})
    blocks: Blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": head}, "fields": fields}
    ]
    if not closed:
        blocks.append(
            {
                "type": "actions",
                "block_id": "task_actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": str(TaskAction.ASSIGN_ME),
                        "text": {"type": "plain_text", "text": "Assign to me"},
                        "value": task.reference,
                    },
                    {
                        "type": "button",
                        "action_id": str(TaskAction.CLOSE),
                        "text": {"type": "plain_text", "text": "Close"},
                        "value": task.reference,
                        "style": "danger",
                    },
                ],
            }
        )
    # The notification text; also what a shortcut on this message files as its title.
    text = f"{task.reference} {task.title}"
    return text, blocks


def thread_link(task: Task, filed_by: str | None = None) -> str:
    """Posted in the thread a task was made from."""
    by = f" by <@{filed_by}>" if filed_by else ""
    return f":memo: Task created{by}: {_link(task)} *{escape(task.title)}*"


def no_such_person(name: str, system: str) -> tuple[str, str]:
    """A plain `@name` the tracker does not know: what was wrong, and what to type instead."""
    return (
        f"{system} has no user `{name}`, so no task was filed.",
        f"Assign with a {system} username (`@their-{system.lower()}-name`) or mention the "
        "person from Slack's @ list; someone whose Slack e-mail differs from their "
        f"{system} one is mapped in the YAML file (opsloop.yml): "
        f"`users: {{<their Slack ID, U…>: their-{system.lower()}-name}}`.",
    )


def closed_reply(task: Task) -> Reply:
    return Reply(text=f":white_check_mark: Closed {_link(task)} {escape(task.title)}.")


def already_closed(task: Task, by: str | None, at: float | None) -> Reply:
    """Close on a task that is closed already: nothing was done."""
    who = f" by <@{by}>" if by else ""
    when = f" at {clock(at)}" if at else ""
    return Reply(
        text=f"{_link(task)} {escape(task.title)} was already closed{who}{when}; "
        "nothing was changed."
    )


def close_refused(task: Task, filer: str | None) -> str:
    """Why someone may not close a task, naming who may."""
    who = [f"whoever filed it (<@{filer}>)"] if filer else []
    assignees = ", ".join(f"@{escape(a)}" for a in task.shown_assignees)
    who.append(f"its assignee ({assignees})" if assignees else "its assignee (nobody yet)")
    outside = "" if filer else " Who filed it is not known (filed outside Slack, or long ago)."
    return (
        f"You may not close {_link(task)}: only {', '.join(who)}, deployers and approvers "
        f"may.{outside}"
    )


def list_reply(tasks: list[Task], project: str, mine: bool) -> Reply:
    if not tasks:
        return Reply(text=f"No {'tasks assigned to you' if mine else 'open tasks'} in `{project}`.")
    lines = []
    for task in tasks:
        who = ", ".join(f"@{escape(a)}" for a in task.shown_assignees) or "unassigned"
        labels = " ".join(f"`{escape(label)}`" for label in task.labels)
        lines.append(f"{_link(task)} {escape(task.title)} · {who} {labels}".rstrip())
    count = f"{len(tasks)} {'task' if len(tasks) == 1 else 'tasks'}"
    title = f"{count} assigned to you in {project}" if mine else f"{count} open in {project}"
    blocks: Blocks = [{"type": "header", "text": {"type": "plain_text", "text": title[:150]}}]
    blocks += sections(lines)
    blocks.append(context("`/task close &lt;ref&gt;` closes one; `/task list mine` shows yours."))
    return Reply(text=title + "\n" + "\n".join(lines), blocks=blocks[:50])


def modal(
    projects: dict[str, Project],
    *,
    channel: str,
    initial_project: str | None,
    title: str = "",
    description: str = "",
    source: Source | None = None,
) -> dict[str, Any]:
    """The task form; private_metadata carries the channel to post the result in and the
    message it was opened from, if any."""
    options = [
        {
            "text": {"type": "plain_text", "text": f"{alias} ({p.tracker[1]})"[:75]},
            "value": alias,
        }
        for alias, p in sorted(projects.items())
        if p.tracker[1]  # a project that only builds (`jenkins:` alone) takes no tasks
    ][:100]
    project_select: dict[str, Any] = {
        "type": "static_select",
        "action_id": "value",
        "options": options,
    }
    initial = next((o for o in options if o["value"] == initial_project), None)
    if initial is not None:
        project_select["initial_option"] = initial
    title_input: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "value",
        "max_length": 255,
    }
    if title:
        title_input["initial_value"] = title[:255]
    description_input: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "value",
        "multiline": True,
    }
    if description:
        description_input["initial_value"] = description[:3000]
    metadata = {"channel": channel}
    if source is not None and source.thread_ts:
        metadata.update(thread_ts=source.thread_ts, link_ts=source.link_ts)
    return {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "title": {"type": "plain_text", "text": "Create a task"},
        "submit": {"type": "plain_text", "text": "Create"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps(metadata),
        "blocks": [
            {
                "type": "input",
                "block_id": Field.TITLE,
                "label": _plain("Title"),
                "element": title_input,
            },
            {
                "type": "input",
                "block_id": Field.DESCRIPTION,
                "optional": True,
                "label": _plain("Description"),
                "element": description_input,
            },
            {
                "type": "input",
                "block_id": Field.PROJECT,
                "label": _plain("Project"),
                "element": project_select,
            },
            {
                "type": "input",
                "block_id": Field.LABELS,
                "optional": True,
                "label": _plain("Labels"),
                "hint": _plain("Separated by commas, e.g. bug, frontend"),
                "element": {"type": "plain_text_input", "action_id": "value"},
            },
            {
                "type": "input",
                "block_id": Field.ASSIGNEE,
                "optional": True,
                "label": _plain("Assignee"),
                "element": {"type": "users_select", "action_id": "value"},
            },
        ],
    }


def _plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}
