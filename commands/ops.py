"""`/ops`: the bot's own help, health and audit log."""

from __future__ import annotations

import re
import time
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.deps import CommandHelp, Deps
from bot.durable import action_job, add_action, add_slash_command, slash_job
from bot.errors import IntegrationError
from bot.feedback.history import LEAD_TIME_JOB
from bot.feedback.service import DIGEST_JOB, MAX_DAYS, SCHEDULE_JOB, FeedbackService
from bot.jobs import JobContext, JobRegistry
from bot.replies import Reply, usage_error
from bot.slack_requests import ActionRequest, SlashRequest
from commands.ops_replies import (
    REFRESH_STATUS,
    StatusCheck,
    audit_reply,
    help_reply,
    status_reply,
)

HELP = CommandHelp(
    command="/ops",
    summary="opsloop itself: what it can do, whether it is healthy, what it decided",
    usage=(
        "/ops help",
        "/ops status",
        "/ops audit [n]   (n: 1-100, default 10)",
        "/ops dora [service] [days]   (delivery figures; default: every service, 30 days)",
    ),
)
JOB = "ops.run"
REFRESH_JOB = "ops.refresh_status"
AUDIT_DEFAULT, AUDIT_MAX = 10, 100
DORA_DAYS = 30
NUMBER = re.compile(r"[+-]?[0-9]+([.,][0-9]*)?")  # what a person means as days


def parse(text: str) -> dict[str, Any]:
    """`/ops` arguments; raises a UserError with the usage on anything else."""
    words = text.split()
    sub = words[0].lower() if words else "help"
    if sub == "help" and len(words) <= 1:
        return {"sub": "help"}
    if sub == "status" and len(words) == 1:
        return {"sub": "status"}
    if sub == "audit" and len(words) <= 2:
        if len(words) == 1:
            return {"sub": "audit", "n": AUDIT_DEFAULT}
        if words[1].isdigit() and 1 <= int(words[1]) <= AUDIT_MAX:
            return {"sub": "audit", "n": int(words[1])}
        raise usage_error(HELP, f"`{words[1]}` is not a number of entries from 1 to {AUDIT_MAX}.")
    if sub == "dora" and len(words) <= 3:
        return _dora(words[1:])
    if sub == "dora":
        raise usage_error(HELP, "`/ops dora` takes at most a service and a number of days.")
    if sub in ("help", "status"):
        raise usage_error(HELP, f"`/ops {sub}` takes no arguments.")
    raise usage_error(HELP, f"`{words[0]}` is not an /ops command.")


def _dora(words: list[str]) -> dict[str, Any]:
    """`[service] [days]`: the service is checked by the job, which knows the YAML."""
    service, days = None, DORA_DAYS
    if len(words) == 2:
        service, days = words[0], _days(words[1])
    elif words and NUMBER.fullmatch(words[0]):
        days = _days(words[0])
    elif words:
        service = words[0]
    return {"sub": "dora", "service": service, "days": days}


def _days(word: str) -> int:
    if not word.isdigit() or not 1 <= int(word) <= MAX_DAYS:
        raise usage_error(
            HELP, f"`{word}` is not a number of days: type a whole number from 1 to {MAX_DAYS}."
        )
    return int(word)


async def status_checks(deps: Deps) -> list[StatusCheck]:
    """The bot's own health, one line per part."""
    checks = []
    started = time.perf_counter()
    try:
        await deps.store.ping()
        depth = await deps.store.queue_depth()
        workers = await deps.store.workers_alive()
        ms = (time.perf_counter() - started) * 1000
        checks.append(StatusCheck("Redis", True, f"answers in {ms:.1f} ms"))
        checks.append(StatusCheck("Job queue", True, f"{depth} queued or running"))
        checks.append(StatusCheck("Workers", workers > 0, f"{workers} alive"))
    except Exception as e:
        checks.append(StatusCheck("Redis", False, f"not answering ({type(e).__name__})"))
    try:
        auth = await deps.slack.call("auth.test")
        checks.append(StatusCheck("Slack", True, f"reachable as {auth.get('user', 'the bot')}"))
    except IntegrationError as e:
        checks.append(StatusCheck("Slack", False, e.message))
    checks.append(StatusCheck("Integrations", True, _integrations(deps)))
    return checks


def _integrations(deps: Deps) -> str:
    """Each outside system's own words, e.g. "GitLab configured, Docker not used"."""
    return ", ".join(deps.systems.status())


async def run(job: JobContext, request: SlashRequest, args: dict[str, Any]) -> Reply:
    """Ephemeral answer to `/ops <sub>`."""
    deps = job.deps
    if args["sub"] == "status":
        return status_reply(await status_checks(deps))
    if args["sub"] == "dora":
        return await FeedbackService(deps).dora(args["service"], int(args["days"]))
    if args["sub"] == "audit":
        n = int(args["n"])
        return audit_reply(await deps.store.audit_recent(n), n)
    return help_reply(deps.commands)


async def refresh(job: JobContext, request: ActionRequest) -> Reply:
    """The status message's Refresh button: the same message, checked again."""
    return status_reply(await status_checks(job.deps), replace=True)


def register(app: AsyncApp, deps: Deps) -> None:
    add_slash_command(app, deps, HELP.command, parse, JOB)
    add_action(app, deps, REFRESH_STATUS, REFRESH_JOB)


async def lead_time(job: JobContext, payload: dict[str, Any]) -> None:
    await FeedbackService(job.deps).measure_lead_time(
        str(payload["service"]), str(payload["rollout"]), job.attempt
    )


async def digest(job: JobContext, payload: dict[str, Any]) -> None:
    await FeedbackService(job.deps).post_digest(float(payload["slot"]))


async def schedule_digest(job: JobContext, payload: dict[str, Any]) -> None:
    await FeedbackService(job.deps).schedule_digest()


def _digest_wanted(deps: Deps) -> bool:
    return deps.config.feedback.digest_channel is not None


def register_jobs(registry: JobRegistry) -> None:
    registry.add(JOB, slash_job(run))
    registry.add(REFRESH_JOB, action_job(refresh))
    # The delivery figures' jobs (bot/feedback/service.py): /ops dora reads what they keep.
    registry.add(LEAD_TIME_JOB, lead_time)
    registry.add(DIGEST_JOB, digest)
    registry.add(SCHEDULE_JOB, schedule_digest)
    registry.run_on_worker_start(SCHEDULE_JOB, _digest_wanted)
