"""`/alerts` and the alert message's buttons; the jobs behind Alertmanager notifications."""

from __future__ import annotations

import re
import time
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.alerting import last_change, messages
from bot.alerting.last_change import ALERT_RENDER_JOB, LastChangeAction
from bot.alerting.messages import SILENCE_DURATIONS, AlertAction
from bot.alerting.service import (
    ESCALATE_JOB,
    ESCALATE_STORM_JOB,
    NOTIFY_JOB,
    POLL_JOB,
    STORM_RENDER_JOB,
    AlertService,
)
from bot.deploys.rollout import ROLLED_BACK, ROLLING_BACK, Refused, describe_state
from bot.deploys.service import DeployService
from bot.deps import CommandHelp, Deps
from bot.durable import action_job, add_action, add_slash_command, slash_job
from bot.jobs import JobContext, JobRegistry
from bot.replies import Reply, unknown_button, usage, usage_error
from bot.slack_requests import ActionRequest, SlashRequest

HELP = CommandHelp(
    command="/alerts",
    summary="open Alertmanager alert groups, this channel's first",
    usage=("/alerts",),
)
LIST_JOB = "alerts.list"
ACK_CLICK_JOB = "alerts.ack_click"
UNACK_CLICK_JOB = "alerts.unack_click"
SILENCE_CLICK_JOB = "alerts.silence_click"
ROLL_BACK_CLICK_JOB = "alerts.roll_back_click"
_GROUP_REF = re.compile(r"AL-[0-9]{1,9}")


def parse(text: str) -> dict[str, Any]:
    if text.strip().lower() in ("", "list"):
        return {"sub": "list"}
    if text.strip().lower() == "help":
        return {"sub": "help"}
    raise usage_error(HELP, f"`/alerts` takes no arguments (got `{text.strip()}`).")


async def run_list(job: JobContext, request: SlashRequest, args: dict[str, Any]) -> Reply:
    """Ephemeral list of open groups."""
    if args["sub"] == "help":
        return Reply(text=usage(HELP) + "\nAcknowledge with the alert's button or `/ack AL-<n>`.")
    groups = await AlertService(job.deps).open_groups()
    return messages.alerts_list(groups, request.channel_id, time.time())


def group_button(value: str) -> str:
    """An alert message's button value: the group's reference, as opsloop wrote it."""
    if not _GROUP_REF.fullmatch(value):
        raise unknown_button("an alert reference like `AL-12`", "`/ack AL-<n>` or `/alerts`")
    return value


async def ack_click(job: JobContext, request: ActionRequest) -> Reply | None:
    """Acknowledge button: the message itself shows it; only a refusal is answered."""
    changed, text = await AlertService(job.deps).acknowledge(
        group_button(request.value), request.user_id, request.user_name, key=job.job_id
    )
    return None if changed else Reply(text=text)


async def unack_click(job: JobContext, request: ActionRequest) -> Reply | None:
    await AlertService(job.deps).unacknowledge(group_button(request.value), request.user_id)
    return None


async def silence_click(job: JobContext, request: ActionRequest) -> Reply | None:
    duration = SILENCE_DURATIONS[AlertAction(request.action_id)]
    await AlertService(job.deps).silence(
        group_button(request.value), request.user_id, request.user_name, duration, key=job.job_id
    )
    return None


async def roll_back_click(job: JobContext, request: ActionRequest) -> Reply | None:
    """Roll back on an alert's last change: `/deploy rollback` of the rollout the button
    showed (deployers only, audited the same), then a reply in the alert's thread. Refused,
    with where things stand, once that rollout is over or another took its place."""
    parsed = last_change.parse_value(request.value)
    if parsed is None:
        raise unknown_button("`<service>|<rollout id>|AL-<n>`", "`/deploy rollback <service>`")
    name, rollout_id, ref = parsed
    deploys = DeployService(job.deps)
    try:
        await deploys.roll_back(name, request.user_id, job.job_id, rollout_id)
    except Refused:
        current = await deploys.store.load(name)
        if (
            current is not None
            and current.id == rollout_id
            and current.state in (ROLLING_BACK, ROLLED_BACK)
            and current.ended_by
        ):
            # Someone was quicker (two clicks, two people): say who, not the rules' words.
            raise Refused(
                f"<@{current.ended_by}> already rolled {name} back ({current.id}: "
                f"{describe_state(current)})."
            ) from None
        raise
    r = await deploys.store.load(name)
    if r is not None and r.id == rollout_id:
        reply = last_change.rolled_back_reply(r, request.user_id)
        await AlertService(job.deps).reply_once(ref, reply, key=job.job_id)
    return None  # the alert's thread and the rollout's message say it


async def render(job: JobContext, payload: dict[str, Any]) -> None:
    """A rollout an alert message shows moved: render that message again."""
    await AlertService(job.deps).refresh(payload["ref"])


async def notify(job: JobContext, payload: dict[str, Any]) -> None:
    await AlertService(job.deps).notify(
        payload["notification"], float(payload["received_at"]), job.attempt, key=job.job_id
    )


async def escalate(job: JobContext, payload: dict[str, Any]) -> None:
    await AlertService(job.deps).escalate(payload["ref"], int(payload["round"]), job.attempt)


async def escalate_storm(job: JobContext, payload: dict[str, Any]) -> None:
    await AlertService(job.deps).escalate_storm(
        payload["channel"], payload["storm_id"], int(payload["round"])
    )


async def poll(job: JobContext, payload: dict[str, Any]) -> None:
    await AlertService(job.deps).poll(payload["ref"], int(payload["generation"]))


async def storm_render(job: JobContext, payload: dict[str, Any]) -> None:
    await AlertService(job.deps).render_storm(payload["channel"])


def register(app: AsyncApp, deps: Deps) -> None:
    add_slash_command(app, deps, HELP.command, parse, LIST_JOB)
    add_action(app, deps, AlertAction.ACK, ACK_CLICK_JOB)
    add_action(app, deps, AlertAction.UNACK, UNACK_CLICK_JOB)
    for action in SILENCE_DURATIONS:
        add_action(app, deps, action, SILENCE_CLICK_JOB)
    add_action(app, deps, LastChangeAction.ROLL_BACK, ROLL_BACK_CLICK_JOB)


def register_jobs(registry: JobRegistry) -> None:
    registry.add(LIST_JOB, slash_job(run_list))
    registry.add(ACK_CLICK_JOB, action_job(ack_click))
    registry.add(UNACK_CLICK_JOB, action_job(unack_click))
    registry.add(SILENCE_CLICK_JOB, action_job(silence_click))
    registry.add(ROLL_BACK_CLICK_JOB, action_job(roll_back_click))
    registry.add(ALERT_RENDER_JOB, render)
    registry.add(NOTIFY_JOB, notify)
    registry.add(ESCALATE_JOB, escalate)
    registry.add(ESCALATE_STORM_JOB, escalate_storm)
    registry.add(POLL_JOB, poll)
    registry.add(STORM_RENDER_JOB, storm_render)
