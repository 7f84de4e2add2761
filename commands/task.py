"""`/task`: GitLab issues from Slack: a command, a modal, a message shortcut, buttons, and
the Create task button on alert threads."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.alerting.messages import AlertAction
from bot.deps import CommandHelp, Deps, Shortcut
from bot.durable import (
    FormErrors,
    action_job,
    add_action,
    add_message_shortcut,
    add_slash_command,
    add_view_submission,
    shortcut_job,
    slash_job,
    view_job,
)
from bot.errors import UserError
from bot.jobs import JobContext, JobRegistry
from bot.replies import Reply, unknown_button, usage, usage_error
from bot.slack_requests import ActionRequest, ShortcutRequest, SlashRequest, ViewRequest
from bot.tasks import messages
from bot.tasks.from_sources import from_alert, from_message
from bot.tasks.grammar import GrammarError, TaskRef, parse_create, parse_ref
from bot.tasks.messages import Field, TaskAction
from bot.tasks.service import NewTask, TaskService
from commands.alerts import group_button

HELP = CommandHelp(
    command="/task",
    summary="GitLab issues: file one, list them, close one",
    usage=(
        "/task   (opens a form)",
        "/task <title> [@person] [#label ...] [project:<alias>] [-- description]",
        "/task list [mine] [<project>]",
        "/task close <ref>   e.g. web#12, acme/web#12, #12",
        "/task help",
    ),
)
SHORTCUTS = (
    Shortcut(
        name="Create task from message",
        callback_id=messages.SHORTCUT_CALLBACK,
        description="File this message as a GitLab issue",
    ),
)
JOB = "tasks.command"
MODAL_JOB = "tasks.modal"
SHORTCUT_JOB = "tasks.from_message"
ALERT_JOB = "tasks.from_alert"
ASSIGN_JOB = "tasks.assign_me"
CLOSE_JOB = "tasks.close"


def parse(text: str) -> dict[str, Any]:
    """`/task` arguments; a UserError with the usage on anything else."""
    words = text.split()
    if not words:
        return {"sub": "modal"}
    first = words[0].lower()
    try:
        if first == "help" and len(words) == 1:
            return {"sub": "help"}
        if first == "list":
            rest = words[1:]
            mine = bool(rest) and rest[0].lower() == "mine"
            rest = rest[1:] if mine else rest
            if len(rest) > 1:
                raise GrammarError("`/task list` takes `mine` and one project at most.")
            return {"sub": "list", "mine": mine, "project": rest[0] if rest else None}
        if first == "close":
            if len(words) != 2:
                raise GrammarError("`/task close` takes one task reference.")
            ref = parse_ref(words[1])
            return {"sub": "close", "project": ref.project, "key": ref.key}
        draft = parse_create(text)
    except GrammarError as e:
        raise usage_error(HELP, str(e)) from None
    return {"sub": "create", **draft.__dict__}


async def open_modal(deps: Deps, args: dict[str, Any], body: dict[str, Any]) -> str | None:
    """`/task` alone: the form, opened with the command's trigger_id inside the ack."""
    if deps.tasks is None:
        return deps.systems.missing("tasks")
    if not deps.config.projects:
        return "No projects are configured; add `projects:` to the YAML file to file tasks."
    channel = str(body.get("channel_id", ""))
    initial = next((a for a, p in deps.config.projects.items() if p.channel == channel), None)
    if initial is None and len(deps.config.projects) == 1:
        initial = next(iter(deps.config.projects))
    view = messages.modal(deps.config.projects, channel=channel, initial_project=initial)
    await deps.slack.call("views.open", trigger_id=body.get("trigger_id"), view=view)
    return None


async def run(job: JobContext, request: SlashRequest, args: dict[str, Any]) -> Reply | None:
    service = TaskService(job.deps)
    sub = args["sub"]
    if sub == "help":
        return Reply(text=usage(HELP))
    if sub == "list":
        mine_for = request.user_id if args["mine"] else None
        path, issues = await service.list(
            args["project"], channel=request.channel_id, mine_for=mine_for
        )
        return messages.list_reply(issues, path, args["mine"])
    if sub == "close":
        # "iid": what a command stored before tasks had keys calls the key.
        key = args["key"] if "key" in args else args["iid"]
        ref = TaskRef(project=args["project"], key=str(key))
        issue = await service.close(ref, user=request.user_id, channel=request.channel_id)
        return messages.closed_reply(issue)
    task = NewTask(
        title=args["title"],
        project=args["project"],
        description=args["description"],
        labels=args["labels"],
        assignee_slack_id=args["assignee_slack_id"],
        assignee_username=args["assignee_username"],
    )
    issue = await service.create(
        task, creator=request.user_id, channel=request.channel_id, job_id=job.job_id
    )
    await service.post(issue, request.channel_id, request.user_id, job_id=job.job_id)
    return None  # the message in the channel is the answer


class _Odd(Exception):
    """A modal input's state is not what Slack sends for its element."""


def _value(view: dict[str, Any], block: str) -> str | None:
    """The text, option value or user an input holds; None when empty; _Odd when its state
    has a shape Slack does not send (a number for a text, a list for an option)."""
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    inputs = values.get(block) if isinstance(values, dict) else None
    entry = inputs.get("value") if isinstance(inputs, dict) else None
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise _Odd
    if "selected_option" in entry:
        option = entry["selected_option"]
        if option is not None and not isinstance(option, dict):
            raise _Odd
        value = (option or {}).get("value")
    elif "selected_user" in entry:
        value = entry["selected_user"]
    else:
        value = entry.get("value")
    if value is not None and not isinstance(value, str):
        raise _Odd
    return value


def _values(view: dict[str, Any]) -> tuple[dict[Field, str], dict[str, str]]:
    """Each input's value ("" when empty), and a field error for each input that is odd."""
    read: dict[Field, str] = {}
    errors: dict[str, str] = {}
    for field in Field:
        try:
            read[field] = _value(view, field) or ""
        except _Odd:
            read[field] = ""
            errors[field] = messages.ODD_INPUT
    return read, errors


def _channel_of(view: dict[str, Any]) -> str:
    """The channel the modal was opened in, which opsloop wrote in its private_metadata."""
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except (TypeError, ValueError, RecursionError):
        metadata = None
    channel = metadata.get("channel") if isinstance(metadata, dict) else None
    if not isinstance(channel, str) or not channel:
        # Shown on the first input: Slack shows errors only under a view's inputs.
        raise FormErrors({Field.TITLE: messages.ODD_METADATA})
    return channel


async def check_modal(deps: Deps, view: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The form's values, checked while the modal is still open."""
    read, errors = _values(view)
    title = read[Field.TITLE].strip()
    if not title and Field.TITLE not in errors:
        errors[Field.TITLE] = "A task needs a title."
    elif len(title) > 255:
        errors[Field.TITLE] = f"{len(title)} characters; GitLab takes 255."
    project = read[Field.PROJECT]
    if Field.PROJECT not in errors and project not in deps.config.projects:
        errors[Field.PROJECT] = "Pick one of the projects."
    labels = [label.strip() for label in read[Field.LABELS].split(",") if label.strip()]
    if any(" " in label for label in labels):
        errors[Field.LABELS] = "Labels are separated by commas and have no spaces."
    if errors:
        raise FormErrors(errors)
    return {
        "title": title,
        "description": read[Field.DESCRIPTION],
        "project": project,
        "labels": labels,
        "assignee": read[Field.ASSIGNEE] or None,
        "channel": _channel_of(view),
    }


async def run_modal(job: JobContext, request: ViewRequest, args: dict[str, Any]) -> Reply | None:
    service = TaskService(job.deps)
    task = NewTask(
        title=args["title"],
        project=args["project"],
        description=args["description"],
        labels=args["labels"],
        assignee_slack_id=args["assignee"],
    )
    issue = await service.create(
        task, creator=request.user_id, channel=args["channel"], job_id=job.job_id
    )
    if args["channel"]:
        await service.post(issue, args["channel"], request.user_id, job_id=job.job_id)
        return None
    raise UserError("The task was created, but the form did not say where to post it.")


async def run_shortcut(job: JobContext, request: ShortcutRequest) -> Reply | None:
    await from_message(job, request)
    return None


async def run_from_alert(job: JobContext, request: ActionRequest) -> Reply | None:
    group_button(request.value)
    await from_alert(job, request)
    return None


def _task_button(value: str) -> TaskRef:
    """An Assign to me or Close button's value: the task's reference, as opsloop wrote it."""
    try:
        return parse_ref(value)
    except GrammarError:
        raise unknown_button("a task reference like `web#12`", "`/task close <ref>`") from None


async def assign_me(job: JobContext, request: ActionRequest) -> Reply | None:
    """Assign to me: the task's message changes; only a refusal is answered."""
    await TaskService(job.deps).assign_to(
        _task_button(request.value), request.user_id, channel=request.channel_id
    )
    return None


async def close(job: JobContext, request: ActionRequest) -> Reply | None:
    await TaskService(job.deps).close(
        _task_button(request.value), user=request.user_id, channel=request.channel_id
    )
    return None


def register(app: AsyncApp, deps: Deps) -> None:
    add_slash_command(app, deps, HELP.command, parse, JOB, inline={"modal": open_modal})
    add_view_submission(app, deps, messages.MODAL_CALLBACK, check_modal, MODAL_JOB)
    add_message_shortcut(app, deps, messages.SHORTCUT_CALLBACK, SHORTCUT_JOB)
    add_action(app, deps, TaskAction.ASSIGN_ME, ASSIGN_JOB)
    add_action(app, deps, TaskAction.CLOSE, CLOSE_JOB)
    add_action(app, deps, AlertAction.CREATE_TASK, ALERT_JOB)


def register_jobs(registry: JobRegistry) -> None:
    registry.add(JOB, slash_job(run))
    registry.add(MODAL_JOB, view_job(run_modal))
    registry.add(SHORTCUT_JOB, shortcut_job(run_shortcut))
    registry.add(ALERT_JOB, action_job(run_from_alert))
    registry.add(ASSIGN_JOB, action_job(assign_me))
    registry.add(CLOSE_JOB, action_job(close))
