"""The core of the store: jobs, workers, the audit log and the Slack message budget.

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
    PENDING_UPDATE_TTL,
    QUEUE,
    WORKER_ALIVE_SECONDS,
    WORKERS,
    channel_budget_key,
    effect_key,
    flush_marker_key,
    pending_update_key,
)

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

# GCRA reservation: returns how many ms from now this message may be sent. `burst` messages go
# at once, then one per interval. All replicas share the key, so together they keep the budget.
# With a limit (ARGV[3] >= 0) a slot further away than that is not taken: the answer is then
# negative, minus the wait, and the caller comes back later instead of holding a worker.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local send_at = tat - (burst - 1) * interval
if send_at < now then send_at = now end
if limit >= 0 and send_at - now > limit then return -(send_at - now) end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now + 1000)
return send_at - now
"""

# After a 429, nobody may send to the channel before Retry-After has passed.
_PUSH_BACK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local until_tat = now + tonumber(ARGV[3]) + (burst - 1) * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < until_tat then
  redis.call('SET', KEYS[1], until_tat, 'PX', until_tat - now + 1000)
end
return 1
"""

# Store the newest wanted state of a message; return 1 when no flush is scheduled yet.
_SET_PENDING = """
redis.call('HSET', KEYS[1], 'payload', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then return 1 end
return 0
"""

# The flush sent `version`; finish only if nothing newer arrived meanwhile (else send again).
_FINISH_PENDING = """
local v = redis.call('HGET', KEYS[1], 'version')
if v and v ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
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


@dataclass(frozen=True)
class AuditEntry:
    """One decision: who did what, when, to what."""

    id: str
    at: float
    who: str
    action: str
    subject: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class PendingUpdate:
    payload: dict[str, Any]
    version: str


class Store:
    """The bot's view of Redis."""

    def __init__(self, redis: ArqRedis) -> None:
        from bot.store.alerts import AlertStore
        from bot.store.builds import BuildStore
        from bot.store.deploys import DeployStore
        from bot.store.effects import EffectLedger
        from bot.store.tasks import TaskStore

        self.redis = redis
        self.alerts = AlertStore(redis)
        self.tasks = TaskStore(redis)
        self.builds = BuildStore(redis)
        self.deploys = DeployStore(redis)
        self.effects = EffectLedger(redis)
        self._enqueue = PipelinedScript(redis, _ENQUEUE)
        self._audit_once = redis.register_script(_AUDIT_ONCE)
        self._reserve = redis.register_script(_RESERVE)
        self._push_back = redis.register_script(_PUSH_BACK)
        self._set_pending = redis.register_script(_SET_PENDING)
        self._finish_pending = redis.register_script(_FINISH_PENDING)

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

    # -- Slack message budget ---------------------------------------------------------------

    async def reserve_channel_slot(
        self, channel: str, rate: float, burst: int, max_wait: float | None = None
    ) -> float:
        """Seconds to wait before sending one message to `channel`, the slot now reserved.

        With `max_wait`, a slot further away is not reserved and minus its wait is returned."""
        interval_ms = max(int(1000 / rate), 1)
        limit = -1 if max_wait is None else int(max_wait * 1000)
        keys = [channel_budget_key(channel)]
        ms = await self._reserve(keys=keys, args=[interval_ms, burst, limit])
        return int(ms) / 1000

    async def push_back_channel(
        self, channel: str, seconds: float, rate: float, burst: int
    ) -> None:
        """Slack said 429 with Retry-After: hold every replica's messages to the channel."""
        interval_ms = max(int(1000 / rate), 1)
        await self._push_back(
            keys=[channel_budget_key(channel)], args=[interval_ms, burst, int(seconds * 1000)]
        )

    # -- coalesced message updates ----------------------------------------------------------

    async def set_pending_update(self, channel: str, ts: str, payload: dict[str, Any]) -> bool:
        """Record the newest state of a message; True when the caller must schedule a flush."""
        keys = [pending_update_key(channel, ts), flush_marker_key(channel, ts)]
        args: list[str | int] = [json.dumps(payload), PENDING_UPDATE_TTL]
        return bool(await self._set_pending(keys=keys, args=args))

    async def get_pending_update(self, channel: str, ts: str) -> PendingUpdate | None:
        key = pending_update_key(channel, ts)
        payload, version = await self.redis.hmget(key, ["payload", "version"])  # type: ignore[misc]
        if payload is None or version is None:
            return None
        return PendingUpdate(json.loads(payload), version.decode())

    async def finish_pending_update(self, channel: str, ts: str, version: str) -> bool:
        """Drop the pending state if `version` is still the newest; False if a newer one came."""
        keys = [pending_update_key(channel, ts), flush_marker_key(channel, ts)]
        return bool(await self._finish_pending(keys=keys, args=[version]))

    async def drop_pending_update(self, channel: str, ts: str) -> None:
        await self.redis.delete(pending_update_key(channel, ts), flush_marker_key(channel, ts))
