"""Alert groups in Redis: their records, the open index, the per-group lock and storm state."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from arq.connections import ArqRedis

from bot.alerting.groups import AlertGroup
from bot.store.keys import (
    ALERT_BY_KEY,
    ALERT_SEQ,
    ALERTS_OPEN,
    GROUP_LOCK_TTL,
    GROUP_LOCK_WAIT,
    RESOLVED_GROUP_TTL,
    STORM_QUIET_SECONDS,
    STORM_RECENT_SHOWN,
    STORM_WINDOW_SECONDS,
    alert_group_key,
    alert_lock_key,
    alert_received_key,
    storm_key,
    storm_recent_key,
    storm_window_key,
)
from bot.store.locks import held

# Count this arrival among the channel's new groups of the last window; returns the count.
_COUNT_NEW = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[3] * 2)
return redis.call('ZCARD', KEYS[1])
"""

# Join the channel's current storm, or start a new one when it has been quiet; returns the
# storm id. The summary's ts is filled in by whoever posts it (set_storm_ts).
_JOIN_STORM = """
local now = tonumber(ARGV[1])
local last = tonumber(redis.call('HGET', KEYS[1], 'last_member_at') or '0')
if now - last > tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[1], 'id', ARGV[3], 'started_at', now)
end
redis.call('HSET', KEYS[1], 'last_member_at', now)
redis.call('HINCRBY', KEYS[1], 'members', 1)
redis.call('LPUSH', KEYS[2], ARGV[4])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[5]) - 1)
return redis.call('HGET', KEYS[1], 'id')
"""

# Count a storm member's change (resolved, acked) if that storm is still the current one.
_STORM_COUNT = """
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then
  redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Storm:
    """A channel's storm summary: how many groups joined it and what became of them."""

    id: str
    ts: str | None
    started_at: float
    members: int
    resolved: int
    acked: int
    recent: tuple[str, ...]


def _hash(group_key: str) -> str:
    return hashlib.sha256(group_key.encode()).hexdigest()[:24]


class AlertStore:
    """Alert group records; callers change a group only while holding its lock."""

    def __init__(self, redis: ArqRedis) -> None:
        self.redis = redis
        self._count_new = redis.register_script(_COUNT_NEW)
        self._join_storm = redis.register_script(_JOIN_STORM)
        self._storm_count = redis.register_script(_STORM_COUNT)

    @asynccontextmanager
    async def locked(self, group_key: str) -> AsyncIterator[None]:
        """Hold a group while reading, changing and sending its messages (one job at a time)."""
        async with held(
            self.redis, alert_lock_key(_hash(group_key)), ttl=GROUP_LOCK_TTL, wait=GROUP_LOCK_WAIT
        ):
            yield

    async def ref_for(self, group_key: str) -> str | None:
        ref = await self.redis.hget(ALERT_BY_KEY, group_key)  # type: ignore[misc]
        return ref.decode() if ref else None

    async def newest_received(self, group_key: str) -> float:
        """When the newest notification applied to this groupKey was received; 0 if none."""
        raw = await self.redis.get(alert_received_key(_hash(group_key)))
        return float(raw) if raw else 0.0

    async def note_received(self, group_key: str, received_at: float) -> None:
        key = alert_received_key(_hash(group_key))
        await self.redis.set(key, repr(received_at), ex=RESOLVED_GROUP_TTL)

    async def new_ref(self, group_key: str) -> str:
        """Number a new group AL-<n> and remember it as the open group of its key."""
        n = await self.redis.incr(ALERT_SEQ)
        ref = f"AL-{n}"
        await self.redis.hset(ALERT_BY_KEY, group_key, ref)  # type: ignore[misc]
        return ref

    async def load(self, ref: str) -> AlertGroup | None:
        raw = await self.redis.get(alert_group_key(ref))
        return AlertGroup.from_json(raw) if raw else None

    async def save(self, group: AlertGroup) -> None:
        """Store the record; an open group is indexed, a resolved one expires in time."""
        async with self.redis.pipeline(transaction=True) as pipe:
            if group.is_open:
                pipe.set(alert_group_key(group.ref), group.to_json())
                pipe.zadd(ALERTS_OPEN, {group.ref: group.first_seen})
                pipe.hset(ALERT_BY_KEY, group.group_key, group.ref)
            else:
                pipe.set(alert_group_key(group.ref), group.to_json(), ex=RESOLVED_GROUP_TTL)
                pipe.zrem(ALERTS_OPEN, group.ref)
                # A later firing of the same groupKey is a new incident with its own thread.
                pipe.hdel(ALERT_BY_KEY, group.group_key)
            await pipe.execute()

    async def open_groups(self) -> list[AlertGroup]:
        refs = [r.decode() for r in await self.redis.zrange(ALERTS_OPEN, 0, -1)]
        if not refs:
            return []
        raws = await self.redis.mget([alert_group_key(r) for r in refs])
        return [AlertGroup.from_json(raw) for raw in raws if raw]

    async def open_count(self) -> int:
        """How many alert groups are open (firing), without loading them."""
        return int(await self.redis.zcard(ALERTS_OPEN))

    async def count_new_group(self, channel: str, member: str) -> int:
        """Count a new group in its channel; the number of new groups in the last minute."""
        keys = [storm_window_key(channel)]
        args: list[str | float] = [time.time(), member, STORM_WINDOW_SECONDS]
        return int(await self._count_new(keys=keys, args=args))

    async def join_storm(self, channel: str, new_id: str, line: str) -> str:
        """Add a group (shown as `line`) to the channel's storm; the storm's id."""
        keys = [storm_key(channel), storm_recent_key(channel)]
        args: list[str | float] = [time.time(), STORM_QUIET_SECONDS, new_id, line]
        args.append(STORM_RECENT_SHOWN)
        storm_id = await self._join_storm(keys=keys, args=args)
        return storm_id.decode() if isinstance(storm_id, bytes) else str(storm_id)

    async def count_in_storm(self, channel: str, storm_id: str, counter: str) -> None:
        """A storm member resolved or was acknowledged: count it in the summary."""
        await self._storm_count(keys=[storm_key(channel)], args=[storm_id, counter])

    async def storm(self, channel: str) -> Storm | None:
        raw = await self.redis.hgetall(storm_key(channel))  # type: ignore[misc]
        if not raw:
            return None
        f = {k.decode(): v.decode() for k, v in raw.items()}
        recent = await self.redis.lrange(storm_recent_key(channel), 0, -1)  # type: ignore[misc]
        return Storm(
            id=f["id"],
            ts=f.get("ts") or None,
            started_at=float(f["started_at"]),
            members=int(f.get("members", 0)),
            resolved=int(f.get("resolved", 0)),
            acked=int(f.get("acked", 0)),
            recent=tuple(r.decode() for r in recent),
        )

    @asynccontextmanager
    async def storm_locked(self, channel: str) -> AsyncIterator[None]:
        """One summary post per storm: whoever posts it holds the channel's storm lock."""
        async with held(
            self.redis, storm_key(channel) + ":lock", ttl=GROUP_LOCK_TTL, wait=GROUP_LOCK_WAIT
        ):
            yield

    async def set_storm_ts(self, channel: str, storm_id: str, ts: str) -> None:
        """Remember the summary message of a storm (only if that storm is still current)."""
        key = storm_key(channel)
        current = await self.redis.hget(key, "id")  # type: ignore[misc]
        if current is not None and current.decode() == storm_id:
            await self.redis.hset(key, "ts", ts)  # type: ignore[misc]
