"""What `/metrics` reads from Redis at each scrape: the queue, the workers, alerts, deploys.

Read at scrape time rather than kept up to date by events: every process sharing the Redis shows
the same numbers, and none of them can drift. The reads are bounded (a few counts, one MGET of
the configured services' rollouts, a Lua script that looks at most at the oldest thousand due
jobs), and the whole read gives up after SCRAPE_TIMEOUT so that `/metrics` answers quickly with
`opsloop_redis_up 0` while Redis is away.
"""

from __future__ import annotations

import asyncio

from bot.deploys.rollout import ACTIVE
from bot.deps import Deps
from bot.metrics import SharedState

SCRAPE_TIMEOUT = 1.0


async def read_shared(deps: Deps) -> SharedState:
    store = deps.store
    queue = await store.queue_stats()
    workers = await store.workers_alive()
    alert_groups = await store.alerts.open_count()
    # Every active state, zero included: a stacked panel or a sum() needs no `or vector(0)`.
    deploys = dict.fromkeys(sorted(ACTIVE), 0)
    for rollout in await store.deploys.load_many(sorted(deps.config.services)):
        if rollout.active:
            deploys[rollout.state] += 1
    return SharedState(
        jobs_queued=queue.total,
        jobs_waiting=queue.waiting,
        jobs_in_progress=queue.running,
        jobs_scheduled=queue.scheduled,
        jobs_oldest_age_seconds=queue.oldest_waiting_seconds,
        workers_alive=workers,
        alert_groups_open=alert_groups,
        deploys_in_flight=deploys,
    )


async def refresh(deps: Deps) -> None:
    """Read the shared numbers for this scrape; Redis away or slow: `opsloop_redis_up 0`."""
    try:
        state: SharedState | None = await asyncio.wait_for(read_shared(deps), SCRAPE_TIMEOUT)
    except Exception:  # Redis away: /readyz and the opsloop_redis_up gauge say so
        state = None
    deps.metrics.show_shared(state)
