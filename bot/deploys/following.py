"""The follower: while a rollout is active, its message follows a deployer's system that moves
by itself between the bot's steps (a controller walking its own steps), and a rollout that
system gave up on fails with the system's own words.

A durable job (`deploys.follow`) in links of a few seconds each: a link follows for a while,
then queues the next one while the rollout is active. DeployService starts a chain after every
change and on reconcile; whichever chain holds the service's follower lease runs and any other
ends at once, so a job run twice, or two reconciles, follow once. Only deployers with the
`Follows` capability (bot/deploys/ports.py) are followed.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bot.deploys.ports import Follows
from bot.deploys.rollout import AWAITING
from bot.deploys.service import FOLLOW_JOB, DeployService
from bot.errors import IntegrationError

log = logging.getLogger(__name__)

FOLLOW_SECONDS = 25.0  # one link of the chain, well within a job's time limit
FOLLOW_GRACE = 10.0  # the follower lease outlives a dead holder this long


async def follow(
    service: DeployService, name: str, rollout_id: str, origin: str, n: int, seen: str | None
) -> None:
    """One link of the follower's chain (see the module's docstring)."""
    window = max(1.0, min(FOLLOW_SECONDS, service.deps.settings.job_timeout / 2))
    async with service.store.following(name, window + FOLLOW_GRACE) as held:
        if not held:
            return
        last = await _follow_for(service, name, rollout_id, window, seen)
    if last is None:  # the rollout is over
        return
    payload = {"service": name, "rollout": rollout_id, "origin": origin, "n": n + 1, "seen": last}
    await service.deps.queue.enqueue(
        FOLLOW_JOB, payload, job_id=f"{FOLLOW_JOB}:{rollout_id}:{origin}:{n + 1}"
    )


async def _follow_for(
    service: DeployService, name: str, rollout_id: str, window: float, seen: str | None
) -> str | None:
    """Follow for `window` seconds: what was last seen, or None once the rollout is over."""
    deadline = time.monotonic() + window
    while (left := deadline - time.monotonic()) > 0:
        r = await service.store.load(name)
        if r is None or r.id != rollout_id or not r.active:
            return None
        deployer = service.made(name)
        if not isinstance(deployer, Follows):
            return None
        try:
            change = await deployer.next_change(r, seen, left)
        except IntegrationError as e:  # the message keeps what it showed; look again soon
            log.info("following %s: %s", name, e)
            await asyncio.sleep(min(left, service.deps.settings.deploy_poll_seconds))
            continue
        if change.failure is not None and r.state == AWAITING:
            await service.gave_up(name, rollout_id, change.failure)
        elif seen is not None and change.seen != seen:
            await service.deliver(r)
        seen = change.seen
    return seen or ""
