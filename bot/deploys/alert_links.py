"""The alert groups a rollout's message links to, and the alert messages told that it moved.

The deploy gate and the links read the same groups: open ones with a firing alert carrying the
service's `alert_labels` (bot/alerting/last_change.py `carries`), found in one read of the open
index per render. A link points at the group's message (Slack's permalink, asked once per group
and kept in the effect ledger, so a render costs no Slack call after the first).
"""

from __future__ import annotations

import math
import time

from bot.alerting.groups import AlertGroup
from bot.alerting.last_change import ALERT_RENDER_JOB, AlertLink, carries, link_of
from bot.config_types import Service
from bot.deploys.rollout import Rollout
from bot.deps import Deps
from bot.errors import IntegrationError

MAX_LINKED = 3  # alert groups linked on one rollout message
MAX_TOLD = 20  # alert messages re-rendered after one change of a rollout (the newest)


def _number(group: AlertGroup) -> int:
    return int(group.ref.split("-")[-1])


async def open_alerts(deps: Deps, service: Service) -> list[AlertGroup]:
    """Open groups with a firing alert carrying the service's `alert_labels`, oldest first."""
    if not service.alert_labels:
        return []
    groups = await deps.store.alerts.open_groups()
    found = [g for g in groups if g.is_open and carries(g, service.alert_labels)]
    return sorted(found, key=_number)


def linked(r: Rollout, groups: list[AlertGroup]) -> list[AlertGroup]:
    """The groups the rollout's message links to: while it is active every one (a firing
    alert bears on the next approval), afterwards those that began after it started."""
    shown = [g for g in groups if r.active or g.first_seen >= r.started_at]
    return shown[-MAX_LINKED:]


async def _permalink(deps: Deps, group: AlertGroup) -> str:
    if group.channel is None or group.message_ts is None or group.storm_id:
        return ""
    key = f"alerts.permalink:{group.ref}"
    known = (await deps.store.effects.load(key)).effect
    if known is not None:
        return str(known.get("permalink", ""))
    try:
        data = await deps.slack.call(
            "chat.getPermalink", channel=group.channel, message_ts=group.message_ts
        )
    except IntegrationError:
        return ""  # shown without a link this time; asked again at the next render
    link = str(data.get("permalink", ""))
    if link:
        await deps.store.effects.done(key, {"permalink": link})
    return link


async def links(deps: Deps, groups: list[AlertGroup]) -> list[AlertLink]:
    return [link_of(g, await _permalink(deps, g)) for g in groups]


async def tell_alerts(deps: Deps, groups: list[AlertGroup]) -> None:
    """Render again the messages of the groups that show the rollout (its last change): at
    most one render per group and second; a group inside a storm summary has no message."""
    second = math.floor(time.time()) + 1
    for group in groups[-MAX_TOLD:]:
        if group.message_ts is None or group.storm_id:
            continue
        await deps.queue.enqueue(
            ALERT_RENDER_JOB,
            {"ref": group.ref},
            job_id=f"{ALERT_RENDER_JOB}:{group.ref}:{second}",
            run_at=second,
        )


__all__ = ["MAX_LINKED", "linked", "links", "open_alerts", "tell_alerts"]
