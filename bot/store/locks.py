"""Locks that other processes may wait for, kept alive while their holder works.

A lock's time-to-live is how long others wait when its holder dies (a killed worker); the
holder renews it while it runs, so a slow Slack or GitLab call never lets a second job in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

log = logging.getLogger(__name__)


@asynccontextmanager
async def held(redis: Redis, key: str, *, ttl: float, wait: float) -> AsyncIterator[None]:
    """Hold `key` while the block runs; LockError when it stays taken for `wait` seconds."""
    lock = redis.lock(key, timeout=ttl, blocking_timeout=wait, thread_local=False)
    if not await lock.acquire():
        raise LockError(f"{key} stayed held for {wait:g} s")  # type: ignore[no-untyped-call]
    async with kept(lock, ttl):
        yield


@asynccontextmanager
async def kept(lock: Lock, ttl: float) -> AsyncIterator[None]:
    """An acquired lock, renewed while the block runs and released after it."""
    renew = asyncio.create_task(renewed(lock, ttl))
    try:
        yield
    finally:
        renew.cancel()
        with suppress(asyncio.CancelledError):
            await renew
        with suppress(LockError, RedisError, OSError):
            await lock.release()


async def renewed(lock: Lock, ttl: float) -> None:
    """Renew `lock` every third of its time-to-live until cancelled or lost."""
    while True:
        await asyncio.sleep(ttl / 3)
        try:
            await lock.reacquire()
        except LockError:
            log.warning("lost the lock %s", lock.name)
            return
        except (RedisError, OSError) as e:  # Redis away: the holder finds out on its own
            log.info("could not renew the lock %s (%s)", lock.name, type(e).__name__)
