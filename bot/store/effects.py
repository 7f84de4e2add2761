"""The effect ledger: what a request set out to make outside, and what it made.

A job may run twice or die at any line. Before a call that makes something in another system
(an issue, a pipeline, a Slack message), the job records its intent here; after the call, the
effect. A re-run that finds the effect uses it; one that finds only the intent knows the call
may have gone through, and looks for what it made (by the request's marker) before making it
again. Without an intent nothing was sent, and making it is safe.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis

from bot.store.keys import EFFECT_TTL, effect_key


@dataclass(frozen=True)
class LedgerEntry:
    """One effect's record: its intent (when the call was last set out on, when first, and
    what the caller noted with it) and the effect, once known."""

    intent_at: float | None
    first_intent_at: float | None
    intent: dict[str, Any]
    effect: dict[str, Any] | None


class EffectLedger:
    def __init__(self, redis: ArqRedis) -> None:
        self.redis = redis

    async def load(self, key: str) -> LedgerEntry:
        intent, effect = await self.redis.hmget(effect_key(key), ["intent", "effect"])  # type: ignore[misc]
        data = json.loads(intent) if intent else None
        return LedgerEntry(
            intent_at=float(data["at"]) if data else None,
            first_intent_at=float(data.get("first", data["at"])) if data else None,
            intent=dict(data["data"]) if data else {},
            effect=dict(json.loads(effect)) if effect else None,
        )

    async def intend(
        self, key: str, data: dict[str, Any] | None = None, first: float | None = None
    ) -> float:
        """Record that the call is about to be made (again: `first` is when it was first set
        out on); returns the moment recorded."""
        at = time.time()
        intent = {"at": at, "first": first or at, "data": data or {}}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(effect_key(key), "intent", json.dumps(intent))
            pipe.expire(effect_key(key), EFFECT_TTL)
            await pipe.execute()
        return at

    async def withdraw(self, key: str) -> None:
        """The call failed in a way that says nothing was made: forget the intent, so that a
        re-run makes it at once instead of waiting to be sure."""
        await self.redis.hdel(effect_key(key), "intent")  # type: ignore[misc]

    async def done(self, key: str, effect: dict[str, Any]) -> None:
        """Record what the call made, so that no re-run makes it again."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(effect_key(key), "effect", json.dumps(effect))
            pipe.expire(effect_key(key), EFFECT_TTL)
            await pipe.execute()

    async def first_time(self, key: str, flag: str) -> bool:
        """True the first time `flag` is raised for `key` (e.g. a person told something once)."""
        added = await self.redis.hsetnx(effect_key(key), flag, "1")  # type: ignore[misc]
        return bool(added)
