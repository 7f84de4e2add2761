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
from bot.replies import Reply, usage, usage_error
from bot.slack_requests import ActionRequest, ShortcutRequest, SlashRequest, ViewRequest
from bot.tasks import messages
from bot.tasks.from_sources import from_alert, from_message
from bot.tasks.grammar import GrammarError, parse_create, parse_ref
from bot.tasks.messages import Field, TaskAction
from bot.tasks.service import NewTask, TaskService

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
            return {"sub": "close", "project": ref.project, "iid": ref.iid}
        draft = parse_create(text)
    except GrammarError as e:
        raise usage_error(HELP, str(e)) from None
    return {"sub": "create", **draft.__dict__}


async def open_modal(deps: Deps, args: dict[str, Any], body: dict[str, Any]) -> str | None:
    """`/task` alone: the form, opened with the command's trigger_id inside the ack."""
    if deps.gitlab is None:
        return messages.not_configured()
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
        ref = parse_ref(f"{args['project'] or ''}#{args['iid']}")
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


def _value(view: dict[str, Any], block: str) -> Any:
    entry = ((view.get("state") or {}).get("values") or {}).get(block, {}).get("value") or {}
    if "selected_option" in entry:
        return (entry.get("selected_option") or {}).get("value")
    if "selected_user" in entry:
        return entry.get("selected_user")
    return entry.get("value")


async def check_modal(deps: Deps, view: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The form's values, checked while the modal is still open."""
    errors: dict[str, str] = {}
    title = str(_value(view, Field.TITLE) or "").strip()
    if not title:
        errors[Field.TITLE] = "A task needs a title."
    elif len(title) > 255:
        errors[Field.TITLE] = f"{len(title)} characters; GitLab takes 255."
    project = _value(view, Field.PROJECT)
    if not project or project not in deps.config.projects:
        errors[Field.PROJECT] = "Pick one of the projects."
    raw_labels = str(_value(view, Field.LABELS) or "")
    labels = [label.strip() for label in raw_labels.split(",") if label.strip()]
    if any(" " in label for label in labels):
        errors[Field.LABELS] = "Labels are separated by commas and have no spaces."
    if errors:
        raise FormErrors(errors)
    metadata = json.loads(view.get("private_metadata") or "{}")
    return {
        "title": title,
        "description": str(_value(view, Field.DESCRIPTION) or ""),
        "project": project,
        "labels": labels,
        "assignee": _value(view, Field.ASSIGNEE),
        "channel": str(metadata.get("channel", "")),
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
    await from_alert(job, request)
    return None


async def assign_me(job: JobContext, request: ActionRequest) -> Reply | None:
    """Assign to me: the task's message changes; only a refusal is answered."""
    await TaskService(job.deps).assign_to(
        parse_ref(request.value), request.user_id, channel=request.channel_id
    )
    return None


async def close(job: JobContext, request: ActionRequest) -> Reply | None:
    await TaskService(job.deps).close(
        parse_ref(request.value), user=request.user_id, channel=request.channel_id
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
