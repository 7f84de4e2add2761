"""The core of the store: jobs, workers and the audit log; Slack's limits are in `slack.py`.

Several bot processes share one Redis, so anything two of them could race on is a Lua script.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix

from bot.redis_conn import close
from bot.store.batching import PipelinedScript
from bot.store.keys import (
    AUDIT,
    AUDIT_MAX_ENTRIES,
    EFFECT_TTL,
    JOB_EXPIRES_MS,
    QUEUE,
    WORKER_ALIVE_SECONDS,
    WORKERS,
    effect_key,
)
from bot.store.slack import SlackLimits

# Enqueue only if no job or result with this id exists: the job id is the delivery's identity
# (a Slack trigger_id, an Alertmanager notification hash), so a retried delivery acts once. One
# round trip, where arq's own enqueue_job needs a WATCH/MULTI exchange of three or four; it is
# sent pipelined (bot/store/batching.py) because it sits on the ack path.
_ENQUEUE = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('PSETEX', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
"""


# Append an audit entry only the first time a request decides it (a flag in its ledger entry),
# in one step: a job that dies in between neither loses the entry nor writes it twice.
_AUDIT_ONCE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], '1') == 0 then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'at', ARGV[4], 'who', ARGV[5],
  'action', ARGV[6], 'subject', ARGV[7], 'detail', ARGV[8])
return 1
"""


# The queue at a glance, for /metrics: arq keeps a job in the queue (a sorted set scored by when
# it is due) while a worker runs it, marking it with an in-progress key. Of the due entries, the
# oldest QUEUE_SCAN_LIMIT are looked at one by one (running or waiting); a scrape stays cheap
# however long the queue grows.
QUEUE_SCAN_LIMIT = 1000
_QUEUE_STATS = """
local total = redis.call('ZCARD', KEYS[1])
local due = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])
local entries = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0,
  tonumber(ARGV[3]))
local running = 0
local oldest = -1
for i = 1, #entries, 2 do
  if redis.call('EXISTS', ARGV[2] .. entries[i]) == 1 then
    running = running + 1
  elseif oldest < 0 then
    oldest = tonumber(entries[i + 1])
  end
end
return {total, due, running, tostring(oldest)}
"""


@dataclass(frozen=True)
class QueueStats:
    """The job queue as /metrics shows it."""

    total: int  # every entry: waiting, running, or deferred to a later time
    waiting: int  # due, and no worker has started it
    running: int  # started by a worker, not finished
    scheduled: int  # deferred to a later time (timeouts, escalations, retries)
    oldest_waiting_seconds: float  # how long the oldest waiting job has been due; 0 if none


@dataclass(frozen=True)
class AuditEntry:
    """One decision: who did what, when, to what."""

    id: str
    at: float
    who: str
    action: str
    subject: str
    detail: dict[str, Any]


class Store:
    """The bot's view of Redis."""

    def __init__(self, redis: ArqRedis) -> None:
        from bot.store.alerts import AlertStore
        from bot.store.builds import BuildStore
        from bot.store.deploys import DeployStore
        from bot.store.effects import EffectLedger
        from bot.store.history import HistoryStore
        from bot.store.tasks import TaskStore

        self.redis = redis
        self.alerts = AlertStore(redis)
        self.tasks = TaskStore(redis)
        self.builds = BuildStore(redis)
        self.history = HistoryStore(redis)
        self.deploys = DeployStore(redis)
        self.effects = EffectLedger(redis)
        self.slack = SlackLimits(redis)
        self._enqueue = PipelinedScript(redis, _ENQUEUE)
        self._audit_once = redis.register_script(_AUDIT_ONCE)
        self._queue_stats = redis.register_script(_QUEUE_STATS)

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def reset(self) -> None:
        """Forget everything (the sandbox only: its emulated Slack starts empty every time)."""
        await self.redis.flushdb()

    async def close(self) -> None:
        await self._enqueue.close()
        await close(self.redis)

    # -- jobs -------------------------------------------------------------------------------

    async def enqueue_job(self, job_id: str, serialized: bytes, run_at_ms: int) -> bool:
        """Put a serialized arq job on the queue unless one with this id exists or ran."""
        keys = [job_key_prefix + job_id, result_key_prefix + job_id, QUEUE]
        expires = max(run_at_ms - int(time.time() * 1000), 0) + JOB_EXPIRES_MS
        return bool(await self._enqueue(keys, [serialized, expires, run_at_ms, job_id]))

    async def extend_in_progress(self, job_id: str, seconds: float) -> None:
        """Keep arq's in-progress mark of a running job (bot.jobs.keep_alive)."""
        await self.redis.pexpire(in_progress_key_prefix + job_id, int(seconds * 1000))

    async def queue_depth(self) -> int:
        return int(await self.redis.zcard(QUEUE))

    async def queue_stats(self) -> QueueStats:
        """Counts by state and the oldest waiting job's age, in one round trip (bounded work)."""
        now_ms = int(time.time() * 1000)
        args: list[str | int] = [now_ms, in_progress_key_prefix, QUEUE_SCAN_LIMIT]
        total, due, running, oldest = await self._queue_stats(keys=[QUEUE], args=args)
        oldest_ms = float(oldest)
        return QueueStats(
            total=int(total),
            waiting=max(int(due) - int(running), 0),
            running=int(running),
            scheduled=int(total) - int(due),
            oldest_waiting_seconds=max(now_ms - oldest_ms, 0) / 1000 if oldest_ms >= 0 else 0.0,
        )

    async def worker_heartbeat(self, worker_id: str) -> None:
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(WORKERS, {worker_id: now})
            pipe.zremrangebyscore(WORKERS, 0, now - WORKER_ALIVE_SECONDS)
            await pipe.execute()

    async def worker_gone(self, worker_id: str) -> None:
        await self.redis.zrem(WORKERS, worker_id)

    async def workers_alive(self) -> int:
        return int(await self.redis.zcount(WORKERS, time.time() - WORKER_ALIVE_SECONDS, "+inf"))

    # -- audit log --------------------------------------------------------------------------

    async def audit(
        self, who: str, action: str, subject: str = "", detail: dict[str, Any] | None = None
    ) -> str:
        """Append a decision to the capped audit stream."""
        fields: dict[Any, Any] = {
            "at": f"{time.time():.3f}",
            "who": who,
            "action": action,
            "subject": subject,
            "detail": json.dumps(detail or {}, sort_keys=True),
        }
        entry_id = await self.redis.xadd(AUDIT, fields, maxlen=AUDIT_MAX_ENTRIES, approximate=True)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def audit_once(
        self,
        key: str,
        who: str,
        action: str,
        subject: str = "",
        detail: dict[str, Any] | None = None,
    ) -> bool:
        """`audit`, but once per request `key` (its effect ledger entry), however often the job
        that decides it runs; False when it was written before."""
        args: list[str | int] = [
            f"audited:{action}",
            EFFECT_TTL,
            AUDIT_MAX_ENTRIES,
            f"{time.time():.3f}",
            who,
            action,
            subject,
            json.dumps(detail or {}, sort_keys=True),
        ]
        return bool(await self._audit_once(keys=[effect_key(key), AUDIT], args=args))

    async def audit_recent(self, count: int) -> list[AuditEntry]:
        rows = await self.redis.xrevrange(AUDIT, count=count)
        entries = []
        for entry_id, raw in rows:
            f = {k.decode(): v.decode() for k, v in raw.items()}
            entries.append(
                AuditEntry(
                    id=entry_id.decode(),
                    at=float(f.get("at", "0")),
                    who=f.get("who", ""),
                    action=f.get("action", ""),
                    subject=f.get("subject", ""),
                    detail=json.loads(f.get("detail") or "{}"),
                )
            )
        return entries
