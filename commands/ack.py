"""`/ack AL-<n> [note]`: acknowledge an alert group from anywhere."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.alerting.service import AlertService
from bot.deps import CommandHelp, Deps
from bot.durable import add_slash_command, slash_job
from bot.jobs import JobContext, JobRegistry
from bot.replies import Reply, usage, usage_error
from bot.slack_requests import SlashRequest

HELP = CommandHelp(
    command="/ack",
    summary="acknowledge an alert group (and silence it in Alertmanager)",
    usage=("/ack AL-<n> [note]   e.g. /ack AL-12 looking into it",),
)
JOB = "alerts.ack_command"
_REF = re.compile(r"^(?:al-?)?(\d{1,9})$", re.IGNORECASE)


def parse(text: str) -> dict[str, Any]:
    words = text.split(maxsplit=1)
    if not words:
        raise usage_error(HELP, "Which alert group? Give its reference, shown on the alert.")
    if words[0].lower() == "help" and len(words) == 1:
        return {"help": True}
    match = _REF.match(words[0])
    if match is None:
        raise usage_error(HELP, f"`{words[0]}` is not an alert reference like `AL-12`.")
    return {"ref": f"AL-{int(match.group(1))}", "note": words[1] if len(words) > 1 else ""}


async def run(job: JobContext, request: SlashRequest, args: dict[str, Any]) -> Reply:
    """Ephemeral confirmation; the alert's own message shows the acknowledgement to everyone."""
    if args.get("help"):
        return Reply(text=usage(HELP))
    _, text = await AlertService(job.deps).acknowledge(
        args["ref"], request.user_id, request.user_name, args.get("note", ""), key=job.job_id
    )
    return Reply(text=text)


def register(app: AsyncApp, deps: Deps) -> None:
    add_slash_command(app, deps, HELP.command, parse, JOB)


def register_jobs(registry: JobRegistry) -> None:
    registry.add(JOB, slash_job(run))
