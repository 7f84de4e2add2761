"""`/deploy`: canary rollouts, promoted step by step by the Approve and Reject buttons."""

from __future__ import annotations

import logging
import re
from functools import partial
from typing import Any

from arq.worker import Retry
from slack_bolt.async_app import AsyncApp

from bot.alerting.last_change import ROLLOUT_RENDER_JOB
from bot.deploys import dashboard_marks, evidence_watch, following
from bot.deploys.dashboard_marks import ANNOTATE_JOB
from bot.deploys.flagger_gate import FLAGGER_JOB, FlaggerGate
from bot.deploys.messages import DeployAction
from bot.deploys.service import (
    EVIDENCE_JOB,
    EXPIRE_JOB,
    FOLLOW_JOB,
    RECONCILE_JOB,
    STEP_JOB,
    DeployService,
)
from bot.deps import CommandHelp, Deps
from bot.durable import action_job, add_action, add_slash_command, slash_job
from bot.errors import IntegrationError, OutcomeUnknown, UserError
from bot.jobs import JobContext, JobRegistry, keep_alive
from bot.replies import Reply, unknown_button, usage, usage_error
from bot.slack_requests import ActionRequest, SlashRequest
from bot.store.deploys import LeaseBusy

log = logging.getLogger(__name__)

HELP = CommandHelp(
    command="/deploy",
    summary="canary rollouts promoted step by step by approvers' buttons",
    usage=(
        "/deploy <service> <version>",
        "/deploy promote <service>",
        "/deploy rollback <service>",
        "/deploy status [<service>]",
        "/deploy help",
    ),
)
JOB = "deploys.command"
APPROVE_JOB = "deploys.approve"
REJECT_JOB = "deploys.reject"
_ROLLOUT_VALUE = re.compile(r"[^|]+\|[^|]+(\|-?[0-9]{1,4})?")


def parse(deps: Deps, text: str) -> dict[str, Any]:
    """`/deploy` arguments; a UserError with the usage on anything else. A version is checked
    here, in the ack, by the rule of the service's deployer."""
    words = text.split()
    if not words:
        raise usage_error(HELP, "Which service and version? e.g. `/deploy web 1.4.2`.")
    first = words[0].lower()
    if first == "help" and len(words) == 1:
        return {"sub": "help"}
    if first == "status":
        if len(words) > 2:
            raise usage_error(HELP, "`/deploy status` takes at most one service.")
        return {"sub": "status", "service": words[1] if len(words) == 2 else None}
    if first in ("promote", "rollback"):
        if len(words) != 2:
            raise usage_error(
                HELP, f"`/deploy {first}` takes one service, e.g. `/deploy {first} web`."
            )
        return {"sub": first, "service": words[1]}
    if len(words) != 2:
        raise usage_error(
            HELP, "`/deploy` takes a service and a version, e.g. `/deploy web 1.4.2`."
        )
    service, version = words
    try:
        DeployService(deps).validate_version(service, version)
    except UserError as e:
        raise usage_error(HELP, e.problem) from None
    return {"sub": "start", "service": service, "version": version}


async def run(job: JobContext, request: SlashRequest, args: dict[str, Any]) -> Reply | None:
    service = DeployService(job.deps)
    sub = args["sub"]
    if sub == "help":
        return Reply(text=usage(HELP))
    if sub == "status":
        return await service.status(args["service"])
    if sub == "promote":
        return await service.promote(args["service"], request.user_id, job.job_id)
    if sub == "rollback":
        return await service.roll_back(args["service"], request.user_id, job.job_id)
    return await service.start(
        args["service"],
        args["version"],
        user=request.user_id,
        channel=request.channel_id,
        job_id=job.job_id,
    )


def _rollout_button(value: str) -> str:
    """An Approve or Reject button's value, `<service>|<rollout id>[|<step>]`, checked
    before the service reads it."""
    if not _ROLLOUT_VALUE.fullmatch(value):
        raise unknown_button("`<service>|<rollout id>|<step>`", "`/deploy status <service>`")
    return value


async def approve(job: JobContext, request: ActionRequest) -> Reply | None:
    value = _rollout_button(request.value)
    await DeployService(job.deps).approve(value, request.user_id, job.job_id)
    return None  # the approval message, edited in place, is the answer


async def reject(job: JobContext, request: ActionRequest) -> Reply | None:
    value = _rollout_button(request.value)
    await DeployService(job.deps).reject(value, request.user_id, job.job_id)
    return None


async def step(job: JobContext, payload: dict[str, Any]) -> None:
    try:
        async with keep_alive(job):
            await DeployService(job.deps).run_step(payload["service"], payload["rollout"])
    except LeaseBusy as e:
        # Another job is still changing the service's containers: come back after it.
        raise Retry(defer=max(1.0, job.deps.settings.deploy_lease_seconds / 3)) from e


async def expire(job: JobContext, payload: dict[str, Any]) -> None:
    await DeployService(job.deps).expire(
        payload["service"], payload["rollout"], float(payload["requested_at"])
    )


async def follow(job: JobContext, payload: dict[str, Any]) -> None:
    await following.follow(
        DeployService(job.deps),
        payload["service"],
        payload["rollout"],
        str(payload["origin"]),
        int(payload["n"]),
        payload.get("seen"),
    )


async def render_for_alerts(job: JobContext, payload: dict[str, Any]) -> None:
    """An alert group on the service opened, was acknowledged or resolved: render the
    rollout's message again with its links."""
    await DeployService(job.deps).refresh(payload["service"])


async def measure(job: JobContext, payload: dict[str, Any]) -> None:
    await evidence_watch.watch(
        DeployService(job.deps),
        payload["service"],
        payload["rollout"],
        str(payload["origin"]),
        int(payload["n"]),
    )


async def reconcile(job: JobContext, payload: dict[str, Any]) -> None:
    await DeployService(job.deps).reconcile()
    await FlaggerGate(job.deps).reconcile()


async def flagger(job: JobContext, payload: dict[str, Any]) -> None:
    """A Flagger gate request's follow-up: its message posted once, then kept current."""
    try:
        await FlaggerGate(job.deps).follow(payload["service"], payload["rollout"])
    except OutcomeUnknown as e:  # Slack did not confirm the post: look for it again later
        if e.look_again_in is not None:
            raise Retry(defer=e.look_again_in) from e
    except IntegrationError as e:
        # Nobody typed anything to be told: Flagger keeps waiting (403), the log says why.
        log.warning("Flagger gate of %s: %s", payload["service"], e)


def register(app: AsyncApp, deps: Deps) -> None:
    add_slash_command(app, deps, HELP.command, partial(parse, deps), JOB)
    add_action(app, deps, DeployAction.APPROVE, APPROVE_JOB)
    add_action(app, deps, DeployAction.REJECT, REJECT_JOB)


async def annotate_step(job: JobContext, payload: dict[str, Any]) -> None:
    await dashboard_marks.annotate(job.deps, payload, job.attempt)


def register_jobs(registry: JobRegistry) -> None:
    registry.add(JOB, slash_job(run))
    registry.add(APPROVE_JOB, action_job(approve))
    registry.add(REJECT_JOB, action_job(reject))
    registry.add(STEP_JOB, step, long=True)
    registry.add(EXPIRE_JOB, expire)
    registry.add(RECONCILE_JOB, reconcile)
    registry.add(FLAGGER_JOB, flagger)
    registry.add(FOLLOW_JOB, follow)
    registry.add(ROLLOUT_RENDER_JOB, render_for_alerts)
    registry.add(EVIDENCE_JOB, measure)
    registry.add(ANNOTATE_JOB, annotate_step)
    registry.run_on_worker_start(RECONCILE_JOB, when=lambda deps: bool(deps.config.services))
