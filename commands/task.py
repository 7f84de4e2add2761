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
    add_slash_command,
    add_view_submission,
    shortcut_job,
    slash_job,
    view_job,
)
from bot.errors import UserError
from bot.form_openers import add_form_action, add_form_shortcut, answer_job_fn
from bot.jobs import JobContext, JobRegistry
from bot.replies import Reply, unknown_button, usage, usage_error
from bot.slack_once import post_once
from bot.slack_requests import ActionRequest, ShortcutRequest, SlashRequest, ViewRequest
from bot.tasks import messages
from bot.tasks.from_sources import alert_form, form, message_form, permalink
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
FORM_ANSWER_JOB = "tasks.form_not_opened"  # why a shortcut or Create task opened no form
# Jobs of a shortcut or Create task stored before they opened a form (a rolling upgrade).
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
    view = form(deps, str(body.get("channel_id", "")))
    await deps.slack.call("views.open", trigger_id=body.get("trigger_id"), view=view)
    return None


async def open_alert_form(deps: Deps, body: dict[str, Any]) -> None:
    """An alert group's Create task: the form, filled in from the group, in the click's ack."""
    request = ActionRequest.from_body(body)
    ref = group_button(request.value)
    group = await deps.store.alerts.load(ref)
    if group is None:
        raise UserError(f"`{ref}` is not an alert group opsloop knows.", "`/alerts` lists them.")
    view = alert_form(deps, group, request.channel_id)
    await deps.slack.call("views.open", trigger_id=request.trigger_id, view=view)


async def open_message_form(deps: Deps, body: dict[str, Any]) -> None:
    """ "Create task from message": the form, filled in from the message, in the ack."""
    request = ShortcutRequest.from_body(body)
    view = message_form(
        deps, request.channel_id, request.message_ts, request.thread_ts, request.message_text
    )
    await deps.slack.call("views.open", trigger_id=request.trigger_id, view=view)


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
        issue, already = await service.close(ref, user=request.user_id, channel=request.channel_id)
        return already or messages.closed_reply(issue)
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


def _where(view: dict[str, Any]) -> dict[str, str]:
    """Where the form was opened, as opsloop wrote it in its private_metadata: the channel,
    and for a form opened from a message, its thread and the message to link back to."""
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except (TypeError, ValueError, RecursionError):
        metadata = None
    if not isinstance(metadata, dict):
        metadata = {}
    where = {k: metadata.get(k, "") for k in ("channel", "thread_ts", "link_ts")}
    if not where["channel"] or not all(isinstance(v, str) for v in where.values()):
        # Shown on the first input: Slack shows errors only under a view's inputs.
        raise FormErrors({Field.TITLE: messages.ODD_METADATA})
    return where


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
        **_where(view),
    }


async def run_modal(job: JobContext, request: ViewRequest, args: dict[str, Any]) -> Reply | None:
    """The form submitted: the task is filed once (the job's id is the submission's), then
    posted in the channel, or linked in the thread of the message it was made from."""
    service = TaskService(job.deps)
    channel, thread_ts, link_ts = args["channel"], args.get("thread_ts"), args.get("link_ts")
    description = args["description"]
    if link_ts and (link := await permalink(job.deps, channel, link_ts)):
        description += f"\n\n---\nFrom Slack: {link}"
    task = NewTask(
        title=args["title"],
        project=args["project"],
        description=description,
        labels=args["labels"],
        assignee_slack_id=args["assignee"],
    )
    issue = await service.create(task, creator=request.user_id, channel=channel, job_id=job.job_id)
    if not thread_ts:
        await service.post(issue, channel, request.user_id, job_id=job.job_id)
        return None
    await post_once(
        job.deps.slack,
        f"{job.job_id}:link",
        channel,
        messages.thread_link(issue, request.user_id),
        thread_ts=thread_ts,
        settle_after=job.deps.settings.settle_seconds,
    )
    return None


async def stored_before_forms(job: JobContext, request: Any) -> Reply | None:
    """A shortcut or Create task job stored by an opsloop that filed without a form."""
    return Reply(
        text=":warning: No task was filed: opsloop now asks for the project in a form. "
        "Click *Create task* (or the shortcut) again to open it."
    )


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
    """Close: the task's message changes; only a refusal or "already closed" is answered."""
    _, already = await TaskService(job.deps).close(
        _task_button(request.value), user=request.user_id, channel=request.channel_id
    )
    return already


def register(app: AsyncApp, deps: Deps) -> None:
    add_slash_command(app, deps, HELP.command, parse, JOB, inline={"modal": open_modal})
    add_view_submission(app, deps, messages.MODAL_CALLBACK, check_modal, MODAL_JOB)
    add_form_shortcut(app, deps, messages.SHORTCUT_CALLBACK, open_message_form, FORM_ANSWER_JOB)
    add_action(app, deps, TaskAction.ASSIGN_ME, ASSIGN_JOB)
    add_action(app, deps, TaskAction.CLOSE, CLOSE_JOB)
    add_form_action(app, deps, AlertAction.CREATE_TASK, open_alert_form, FORM_ANSWER_JOB)


def register_jobs(registry: JobRegistry) -> None:
    registry.add(JOB, slash_job(run))
    registry.add(MODAL_JOB, view_job(run_modal))
    registry.add(FORM_ANSWER_JOB, answer_job_fn())
    registry.add(SHORTCUT_JOB, shortcut_job(stored_before_forms))
    registry.add(ALERT_JOB, action_job(stored_before_forms))
    registry.add(ASSIGN_JOB, action_job(assign_me))
    registry.add(CLOSE_JOB, action_job(close))
