"""Pipelines the bot follows: their record (and Slack message) and a per-pipeline lock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq.connections import ArqRedis

from bot.store.keys import (
    GROUP_LOCK_TTL,
    GROUP_LOCK_WAIT,
    PIPELINE_TTL,
    USERGROUP_TTL,
    pipeline_key,
    pipeline_lock_key,
    usergroup_key,
)
from bot.store.locks import held


class BuildStore:
    def __init__(self, redis: ArqRedis) -> None:
        self.redis = redis

    async def load(self, project: str, pipeline_id: int) -> dict[str, Any] | None:
        raw = await self.redis.get(pipeline_key(project, pipeline_id))
        return dict(json.loads(raw)) if raw else None

    async def save(self, record: dict[str, Any]) -> None:
        key = pipeline_key(record["project"], int(record["pipeline_id"]))
        await self.redis.set(key, json.dumps(record), ex=PIPELINE_TTL)

    @asynccontextmanager
    async def locked(self, project: str, pipeline_id: int) -> AsyncIterator[None]:
        """One change at a time per pipeline: webhooks, polls and clicks race otherwise."""
        async with held(
            self.redis,
            pipeline_lock_key(project, pipeline_id),
            ttl=GROUP_LOCK_TTL,
            wait=GROUP_LOCK_WAIT,
        ):
            yield

    async def usergroup_members(self, group: str) -> list[str] | None:
        raw = await self.redis.get(usergroup_key(group))
        return list(json.loads(raw)) if raw else None

    async def cache_usergroup(self, group: str, members: list[str]) -> None:
        await self.redis.set(usergroup_key(group), json.dumps(members), ex=USERGROUP_TTL)
