"""Rollouts in Redis: each service's latest rollout, changed only by atomic transactions, the
lease held by whichever job is changing the service's containers, and the one held by the job
following its system between steps."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from arq.connections import ArqRedis
from redis.exceptions import WatchError

from bot.deploys.rollout import Rollout
from bot.feedback import history
from bot.store.history import HistoryStore
from bot.store.keys import (
    DEPLOY_SEQ,
    GROUP_LOCK_TTL,
    GROUP_LOCK_WAIT,
    ROLLOUT_TTL,
    deploy_deliver_lock_key,
    deploy_evidence_key,
    deploy_follow_key,
    deploy_lease_key,
    rollout_key,
)
from bot.store.locks import held, kept

log = logging.getLogger(__name__)

T = TypeVar("T")


# The evidence chain's claim: taken when free, kept by its holder, taken over from a chain of
# an earlier rollout (ARGV: the holder "<rollout id>:<chain>", the rollout id, milliseconds).
_CLAIM = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] and string.sub(held, 1, #ARGV[2] + 1) == ARGV[2] .. ':' then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class LeaseBusy(Exception):
    """Another job holds the service's lease for longer than we may wait."""


class DeployStore:
    def __init__(self, redis: ArqRedis) -> None:
        self.redis = redis
        self.history = HistoryStore(redis)
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)

    async def load(self, service: str) -> Rollout | None:
        raw = await self.redis.get(rollout_key(service))
        return Rollout.from_json(raw) if raw else None

    async def load_many(self, services: list[str]) -> list[Rollout]:
        """The latest rollout of each service that has one, in one round trip."""
        if not services:
            return []
        raws = await self.redis.mget([rollout_key(s) for s in services])
        return [Rollout.from_json(raw) for raw in raws if raw]

    async def new_id(self) -> str:
        return f"D-{await self.redis.incr(DEPLOY_SEQ)}"

    async def change(
        self, service: str, decide: Callable[[Rollout | None], tuple[Rollout, T]]
    ) -> tuple[Rollout, T]:
        """Apply `decide` to the service's rollout as one transaction.

        `decide` sees the stored rollout and returns the new one (or raises to change nothing).
        When another process changed the rollout between our read and our write, Redis refuses
        the write (WATCH) and `decide` runs again on the newer rollout: of two Approve clicks at
        the same moment, the second is judged on the state the first left. The rollout's
        history record (bot/feedback/history.py) changes in the same transaction.
        """
        key = rollout_key(service)
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    current = Rollout.from_json(raw) if raw else None
                    new, result = decide(current)
                    records = await self._history(pipe, current, new)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(key, new.to_json(), ex=ROLLOUT_TTL)
                    for record in records:
                        HistoryStore.stage(pipe, record)
                    await pipe.execute()
                    if current is None or current.id != new.id:  # a new record: trim the old
                        await self.history.trim(service)
                    return new, result
                except WatchError:
                    continue

    @staticmethod
    async def _history(
        pipe: Any, current: Rollout | None, new: Rollout
    ) -> list[history.RolloutRecord]:
        """The history records this change writes: the rollout's own, and the one it
        replaces when a newer rollout takes over an unfinished one (Flagger moved on). A
        record that cannot be read (written by a newer opsloop, damaged) costs the history
        that record, never the decision."""
        try:
            return await DeployStore._records(pipe, current, new)
        except (ValueError, TypeError) as e:
            log.warning("%s: history record of %s not kept: %s", new.service, new.id, e)
            return []

    @staticmethod
    async def _records(
        pipe: Any, current: Rollout | None, new: Rollout
    ) -> list[history.RolloutRecord]:
        now = time.time()
        actions = history.decided(current, new)
        old = await HistoryStore.read_in(pipe, new.service, new.id)
        changed = [history.advance(old, new, actions, now)]
        if current is not None and current.id != new.id:
            before = await HistoryStore.read_in(pipe, current.service, current.id)
            if before is not None and before.outcome is None:
                changed.append(history.superseded(before, now))
        return [r for r in changed if r != old]

    @asynccontextmanager
    async def delivering(self, service: str) -> AsyncIterator[None]:
        """One job at a time sends a rollout's messages (a Slack budget wait included)."""
        async with held(
            self.redis, deploy_deliver_lock_key(service), ttl=GROUP_LOCK_TTL, wait=GROUP_LOCK_WAIT
        ):
            yield

    @asynccontextmanager
    async def lease(self, service: str, seconds: float, wait: float) -> AsyncIterator[None]:
        """Hold the service while its containers change; renewed while held.

        A process that dies lets the lease lapse after `seconds`, so the job that resumes its
        work (after a restart) waits at most that long.
        """
        lock = self.redis.lock(
            deploy_lease_key(service), timeout=seconds, blocking_timeout=wait, thread_local=False
        )
        if not await lock.acquire():
            raise LeaseBusy(service)
        async with kept(lock, seconds):
            yield

    @asynccontextmanager
    async def following(self, service: str, seconds: float) -> AsyncIterator[bool]:
        """Hold the service's follower lease while the block runs, if nobody else does
        (True); renewed while held, lapsing `seconds` after its holder dies."""
        lock = self.redis.lock(
            deploy_follow_key(service), timeout=seconds, blocking=False, thread_local=False
        )
        if not await lock.acquire():
            yield False
            return
        async with kept(lock, seconds):
            yield True

    async def keep_measuring(
        self, service: str, rollout_id: str, chain: str, seconds: float
    ) -> bool:
        """Whether chain `chain` of rollout `rollout_id` is the one measuring the service's
        canary (bot/deploys/evidence_watch.py): True when it was, or nobody of this rollout
        was; held for `seconds` more."""
        holder = f"{rollout_id}:{chain}"
        args: list[str | int] = [holder, rollout_id, int(seconds * 1000)]
        return bool(await self._claim(keys=[deploy_evidence_key(service)], args=args))

    async def stop_measuring(self, service: str, rollout_id: str, chain: str) -> None:
        """Chain `chain` ends: the next rollout's chain need not wait for its claim to lapse."""
        await self._release(keys=[deploy_evidence_key(service)], args=[f"{rollout_id}:{chain}"])
