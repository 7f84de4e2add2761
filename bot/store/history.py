"""Each service's delivery history in Redis: its rollouts' and incidents' records by time, for
`/ops dora` and the weekly digest (bot/feedback/).

Per service, a sorted set of record ids by start time and a hash of the records (keys.py). A
record is keyed by its rollout id or AL-<n>, so writing it again (a job run twice, every change
of a rollout) replaces it, never adds a second. Trimmed by age (KEEP_DAYS) and count
(MAX_PER_SERVICE) whenever a record is added, and both keys expire a while after the service's
last record, so a service removed from the YAML leaves nothing behind for ever.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from arq.connections import ArqRedis

from bot.feedback.history import (
    KEEP_DAYS,
    MAX_PER_SERVICE,
    Incident,
    LeadTime,
    RolloutRecord,
)
from bot.store.keys import (
    DIGEST_CLAIM_SECONDS,
    DIGEST_DONE_TTL,
    HISTORY_TTL,
    digest_claim_key,
    digest_done_key,
    history_index_key,
    history_records_key,
)

LEAD_SUFFIX = "+lead"

# Drop the records older than ARGV[1] and the oldest beyond ARGV[2] of the service, with their
# lead times; a bounded amount of work a call (the rest goes with the next records).
_TRIM = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
local extra = redis.call('ZCARD', KEYS[1]) - #gone - tonumber(ARGV[2])
if extra > 0 then
  local oldest = redis.call('ZRANGE', KEYS[1], #gone, #gone + math.min(extra, 1000) - 1)
  for _, id in ipairs(oldest) do table.insert(gone, id) end
end
for _, id in ipairs(gone) do
  redis.call('HDEL', KEYS[2], id, id .. ARGV[3])
  redis.call('ZREM', KEYS[1], id)
end
return #gone
"""


@dataclass
class History:
    """A service's records from a time on."""

    rollouts: list[RolloutRecord] = field(default_factory=list)
    leads: dict[str, LeadTime] = field(default_factory=dict)  # by rollout id
    incidents: list[Incident] = field(default_factory=list)


class HistoryStore:
    def __init__(self, redis: ArqRedis) -> None:
        self.redis = redis
        self._trim = redis.register_script(_TRIM)

    # -- inside a rollout's transaction (bot/store/deploys.py) -----------------------------

    @staticmethod
    async def read_in(pipe: Any, service: str, rollout_id: str) -> RolloutRecord | None:
        """The rollout's record, read while the transaction WATCHes the rollout: only changes
        of that rollout write its record, so the read is as current as the rollout."""
        raw = await pipe.hget(history_records_key(service), rollout_id)
        return RolloutRecord.from_json(raw) if raw else None

    @staticmethod
    def stage(pipe: Any, record: RolloutRecord) -> None:
        """Queue the record's write in the transaction (after MULTI)."""
        records, index = history_records_key(record.service), history_index_key(record.service)
        pipe.hset(records, record.id, record.to_json())
        pipe.zadd(index, {record.id: record.started_at})
        pipe.expire(records, HISTORY_TTL)
        pipe.expire(index, HISTORY_TTL)

    # -- writing ---------------------------------------------------------------------------

    async def save_rollout(self, record: RolloutRecord) -> None:
        """Write a rollout's record outside a rollout change (the benchmark; tests)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            self.stage(pipe, record)
            await pipe.execute()
        await self.trim(record.service)

    async def save_incident(self, incident: Incident) -> None:
        """Write (or overwrite) an incident's record."""
        records, index = history_records_key(incident.service), history_index_key(incident.service)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(records, incident.ref, incident.to_json())
            pipe.zadd(index, {incident.ref: incident.fired_at})
            pipe.expire(records, HISTORY_TTL)
            pipe.expire(index, HISTORY_TTL)
            await pipe.execute()
        await self.trim(incident.service)

    async def incident(self, service: str, ref: str) -> Incident | None:
        raw = await self.redis.hget(history_records_key(service), ref)  # type: ignore[misc]
        return Incident.from_json(raw) if raw else None

    async def save_lead(self, service: str, lead: LeadTime) -> bool:
        """Record a rollout's lead time once; False when one was recorded before."""
        key = history_records_key(service)
        made = await self.redis.hsetnx(key, lead.id + LEAD_SUFFIX, lead.to_json())  # type: ignore[misc]
        return bool(made)

    async def lead(self, service: str, rollout_id: str) -> LeadTime | None:
        raw = await self.redis.hget(history_records_key(service), rollout_id + LEAD_SUFFIX)  # type: ignore[misc]
        return LeadTime.from_json(raw) if raw else None

    async def rollout(self, service: str, rollout_id: str) -> RolloutRecord | None:
        raw = await self.redis.hget(history_records_key(service), rollout_id)  # type: ignore[misc]
        return RolloutRecord.from_json(raw) if raw else None

    async def trim(self, service: str, now: float | None = None) -> int:
        """Drop what is older than KEEP_DAYS or beyond MAX_PER_SERVICE; how many went."""
        cutoff = (now if now is not None else time.time()) - KEEP_DAYS * 86_400
        keys = [history_index_key(service), history_records_key(service)]
        args: list[str | float | int] = [cutoff, MAX_PER_SERVICE, LEAD_SUFFIX]
        return int(await self._trim(keys=keys, args=args))

    # -- reading ---------------------------------------------------------------------------

    async def since(self, service: str, start: float) -> History:
        """The service's records that started at `start` or later, oldest first."""
        ids = [
            i.decode() if isinstance(i, bytes) else str(i)
            for i in await self.redis.zrangebyscore(history_index_key(service), start, "+inf")
        ]
        found = History()
        if not ids:
            return found
        wanted = [x for i in ids for x in (i, i + LEAD_SUFFIX)]
        raws = await self.redis.hmget(history_records_key(service), wanted)  # type: ignore[misc]
        for i, raw, lead in zip(ids, raws[0::2], raws[1::2], strict=True):
            if raw is None:
                continue
            if i.startswith("AL-"):
                found.incidents.append(Incident.from_json(raw))
            else:
                found.rollouts.append(RolloutRecord.from_json(raw))
                if lead is not None:
                    found.leads[i] = LeadTime.from_json(lead)
        return found

    async def count(self, service: str) -> int:
        return int(await self.redis.zcard(history_index_key(service)))

    # -- the weekly digest: once per slot across replicas ----------------------------------

    async def digest_posted(self, slot: str) -> bool:
        return bool(await self.redis.exists(digest_done_key(slot)))

    async def claim_digest(self, slot: str, run: str) -> bool:
        """Own the slot's posting (SET NX) for a while; False while another run owns it."""
        made = await self.redis.set(digest_claim_key(slot), run, nx=True, ex=DIGEST_CLAIM_SECONDS)
        return bool(made)

    async def digest_done(self, slot: str) -> None:
        """The slot's digest is posted: no run posts it again."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(digest_done_key(slot), "1", ex=DIGEST_DONE_TTL)
            pipe.delete(digest_claim_key(slot))
            await pipe.execute()
