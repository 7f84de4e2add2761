"""Task state in Redis: the Slack-to-GitLab identity cache and where task messages are."""

from __future__ import annotations

import json

from arq.connections import ArqRedis

from bot.store.keys import (
    IDENTITY_TTL,
    TASK_MESSAGE_TTL,
    identity_key,
    task_message_key,
)


class TaskStore:
    def __init__(self, redis: ArqRedis) -> None:
        self.redis = redis

    async def cached_username(self, slack_user: str, system: str) -> str | None:
        value = await self.redis.get(identity_key(slack_user, system))
        return value.decode() if value else None

    async def cache_username(self, slack_user: str, system: str, username: str) -> None:
        await self.redis.set(identity_key(slack_user, system), username, ex=IDENTITY_TTL)

    async def task_message(self, reference: str) -> tuple[str, str, str | None] | None:
        """(channel, ts, who filed it) of the message that shows this task, if there is one."""
        raw = await self.redis.get(task_message_key(reference))
        if not raw:
            return None
        data = json.loads(raw)
        return str(data["channel"]), str(data["ts"]), data.get("creator")

    async def remember_task_message(
        self, reference: str, channel: str, ts: str, creator: str | None
    ) -> None:
        value = json.dumps({"channel": channel, "ts": ts, "creator": creator})
        await self.redis.set(task_message_key(reference), value, ex=TASK_MESSAGE_TTL)
