"""`/build`: GitLab pipelines and Jenkins builds run from Slack, followed in one live message."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.builds import messages
from bot.builds.jenkins_hook import HOOK_JOB as JENKINS_HOOK_JOB
from bot.builds.messages import BuildAction
from bot.builds.service import POLL_JOB, VARIABLE, BuildService
from bot.builds.webhook import HOOK_JOB, pipeline_update
from bot.deps import CommandHelp, Deps
from bot.durable import action_job, add_action, add_slash_command, slash_job
from bot.jobs import JobContext, JobRegistry
from bot.replies import Reply, unknown_button, usage, usage_error
from bot.slack_requests import ActionRequest, SlashRequest

HELP = CommandHelp(
    command="/build",
    summary="run a GitLab pipeline or Jenkins job and follow it in one live message",
    usage=(
        "/build <project> [ref] [KEY=VALUE ...]",
        "/build status <project> [pipeline]",
        "/build help",
    ),
)
JOB = "builds.command"
CANCEL_JOB = "builds.cancel"
RETRY_JOB = "builds.retry"


def parse(text: str) -> dict[str, Any]:
    """`/build` arguments; a UserError with the usage on anything else."""
    words = text.split()
    if not words:
        raise usage_error(HELP, "Which project? e.g. `/build web`.")
    if words[0].lower() == "help" and len(words) == 1:
        return {"sub": "help"}
    if words[0].lower() == "status":
        if len(words) not in (2, 3):
            raise usage_error(HELP, "`/build status` takes a project and maybe a pipeline id.")
        if len(words) == 3 and not words[2].lstrip("#").isdigit():
            raise usage_error(HELP, f"`{words[2]}` is not a pipeline id (a number).")
        pid = int(words[2].lstrip("#")) if len(words) == 3 else None
        return {"sub": "status", "project": words[1], "pipeline": pid}
    project, rest = words[0], words[1:]
    ref = None
    if rest and "=" not in rest[0]:
        ref, rest = rest[0], rest[1:]
    variables: dict[str, str] = {}
    for word in rest:
        key, sep, value = word.partition("=")
        if not sep:
            raise usage_error(HELP, f"`{word}` is not a variable; write KEY=VALUE.")
        if not VARIABLE.match(key):
            raise usage_error(
                HELP, f"`{key}` is not a variable name (letters, digits and _, not first a digit)."
            )
        if key in variables:
            raise usage_error(HELP, f"`{key}` is given twice.")
        variables[key] = value
    return {"sub": "run", "project": project, "ref": ref, "variables": variables}


async def run(job: JobContext, request: SlashRequest, args: dict[str, Any]) -> Reply | None:
    service = BuildService(job.deps)
    if args["sub"] == "help":
        return Reply(text=usage(HELP))
    if args["sub"] == "status":
        return messages.status_reply(await service.status(args["project"], args["pipeline"]))
    await service.trigger(
        args["project"],
        args["ref"],
        args["variables"],
        user=request.user_id,
        channel=request.channel_id,
        job_id=job.job_id,
    )
    return None  # the live message in the channel is the answer


async def hook(job: JobContext, payload: dict[str, Any]) -> None:
    body = payload["body"]
    service = BuildService(job.deps)
    if payload["event"] == "Pipeline Hook" and body.get("object_kind") == "pipeline":
        project, pid, status, jobs, fields = pipeline_update(body)
        await service.apply(project, pid, status=status, jobs=jobs, fields=fields)
    elif payload["event"] == "Job Hook":
        # A job changed: ask GitLab for the whole pipeline now rather than wait for the poll.
        path = (body.get("project") or {}).get("path_with_namespace")
        pid = body.get("pipeline_id")
        if path and pid and await job.deps.store.builds.load(str(path), int(pid)):
            await service.poll(str(path), int(pid), attempt=0)


async def jenkins_hook(job: JobContext, payload: dict[str, Any]) -> None:
    """A build that opsloop follows moved: read it now rather than at the next poll."""
    project, number = str(payload["project"]), int(payload["number"])
    if await job.deps.store.builds.load(project, number):
        await BuildService(job.deps).refresh(project, number)


async def poll(job: JobContext, payload: dict[str, Any]) -> None:
    await BuildService(job.deps).poll(
        payload["project"], int(payload["pipeline_id"]), int(payload["attempt"])
    )


def _pipeline_button(value: str) -> str:
    """A Cancel or Retry button's value, `<project path>|<pipeline id>`, checked before the
    service reads it."""
    project, sep, pipeline = value.partition("|")
    if not (sep and project and pipeline.isdecimal() and pipeline.isascii()):
        raise unknown_button("`<project>|<pipeline id>`", "`/build status <project>`")
    return value


async def cancel(job: JobContext, request: ActionRequest) -> Reply | None:
    await BuildService(job.deps).cancel(_pipeline_button(request.value), request.user_id)
    return None


async def retry(job: JobContext, request: ActionRequest) -> Reply | None:
    await BuildService(job.deps).retry(_pipeline_button(request.value), request.user_id)
    return None


def register(app: AsyncApp, deps: Deps) -> None:
    add_slash_command(app, deps, HELP.command, parse, JOB)
    add_action(app, deps, BuildAction.CANCEL, CANCEL_JOB)
    add_action(app, deps, BuildAction.RETRY, RETRY_JOB)


def register_jobs(registry: JobRegistry) -> None:
    registry.add(JOB, slash_job(run))
    registry.add(CANCEL_JOB, action_job(cancel))
    registry.add(RETRY_JOB, action_job(retry))
    registry.add(HOOK_JOB, hook)
    registry.add(JENKINS_HOOK_JOB, jenkins_hook)
    registry.add(POLL_JOB, poll)
