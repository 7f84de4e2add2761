"""The canary measured again while its approval request waits: a chain of deferred jobs
(`deploys.evidence`), one link every OPSLOOP_EVIDENCE_SECONDS, for as long as the rollout is
active.

DeployService starts a chain after every change of a rollout of a service with `analysis`
(and on reconcile). Every link measures at once when the rollout awaits approval, so a new
step shows its numbers without waiting; only the chain holding the service's claim
(bot/store/deploys.py `keep_measuring`) queues a next link, so however many chains were
started, and however often a job runs again, one goes on measuring across replicas. A
measurement is stored on the rollout (bot/deploys/evidence.py `recorded`), which withdraws
approvals given while the canary was healthy, and the message is edited in place.
"""

from __future__ import annotations

import time

from bot.deploys import evidence
from bot.deploys.rollout import AWAITING
from bot.deploys.service import EVIDENCE_JOB, DeployService

GRACE = 15.0  # the claim outlives the time between links this long, so a slow link keeps it


async def watch(service: DeployService, name: str, rollout_id: str, origin: str, n: int) -> None:
    """One link of a measuring chain (see the module's docstring)."""
    r = await service.store.load(name)
    if r is None or r.id != rollout_id or not r.active:
        await service.store.stop_measuring(name, rollout_id, origin)
        return
    settings = service.deps.config.services.get(name)
    if settings is None or settings.analysis is None:
        return
    if r.state == AWAITING:
        measured = await evidence.measure(service.deps.measures, name, settings, r, time.time())
        if measured is not None:
            await service.record_evidence(name, rollout_id, measured)
    if service.deps.measures is None:
        return  # nothing to measure with: the message says so, and nothing will change
    every = service.deps.settings.evidence_seconds
    if not await service.store.keep_measuring(name, rollout_id, origin, every + GRACE):
        return
    payload = {"service": name, "rollout": rollout_id, "origin": origin, "n": n + 1}
    await service.deps.queue.enqueue(
        EVIDENCE_JOB,
        payload,
        job_id=f"{EVIDENCE_JOB}:{rollout_id}:{origin}:{n + 1}",
        run_at=time.time() + every,
    )


__all__ = ["watch"]
