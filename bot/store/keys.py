"""Every Redis key the bot uses and its TTL, in one place.

Nothing outside `bot.store` writes to Redis. The job queue's own keys (`arq:job:*`,
`arq:result:*`, `arq:in-progress:*`, `arq:retry:*`) belong to arq; only the queue name is ours.
"""

from __future__ import annotations

PREFIX = "opsloop:"
QUEUE = PREFIX + "queue"
AUDIT = PREFIX + "audit"
WORKERS = PREFIX + "workers"

AUDIT_MAX_ENTRIES = 10_000
WORKER_ALIVE_SECONDS = 15
# A job that is not picked up within a day is dropped by arq; the same horizon as arq's default.
JOB_EXPIRES_MS = 86_400_000
PENDING_UPDATE_TTL = 3600


def channel_budget_key(channel: str) -> str:
    return f"{PREFIX}slack:budget:{channel}"


def pending_update_key(channel: str, ts: str) -> str:
    return f"{PREFIX}slack:pending:{channel}:{ts}"


def flush_marker_key(channel: str, ts: str) -> str:
    return f"{PREFIX}slack:flushing:{channel}:{ts}"
