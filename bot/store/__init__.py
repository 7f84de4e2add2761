"""The bot's Redis: `Store` and the records it keeps. Key names are in `bot.store.keys`."""

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.store.batching import Unconfirmed
from bot.store.core import AuditEntry, QueueStats, Store
from bot.store.slack import PendingUpdate

# What a call to Redis raises while Redis is away or does not answer: a job that meets one has
# not failed, it runs again later (bot/jobs.py).
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, Unconfirmed)

__all__ = ["REDIS_DOWN", "AuditEntry", "PendingUpdate", "QueueStats", "Store"]
