"""The store against a real Redis: idempotent enqueue, the shared channel budget, coalescing."""

from __future__ import annotations

import asyncio
import time

from bot.jobs import JobQueue
from bot.redis_conn import connect
from bot.store import Store


async def test_enqueue_is_idempotent_by_job_id(redis_url: str) -> None:
    store = Store(connect(redis_url))
    queue = JobQueue(store)
    try:
        assert await queue.enqueue("ops.run", {"x": 1}, job_id="slash:T1") is True
        assert await queue.enqueue("ops.run", {"x": 2}, job_id="slash:T1") is False
        assert await queue.enqueue("ops.run", {"x": 3}, job_id="slash:T2") is True
        assert await store.queue_depth() == 2
    finally:
        await store.close()


async def test_budget_is_shared_by_two_clients(redis_url: str) -> None:
    a, b = Store(connect(redis_url)), Store(connect(redis_url))
    try:
        # 4 messages a second, bursts of 2: ten reservations from two replicas must spread out.
        waits = await asyncio.gather(*(s.reserve_channel_slot("C1", 4.0, 2) for s in (a, b) * 5))
        assert sorted(waits)[:2] == [0.0, 0.0]
        assert max(waits) >= 1.9  # the tenth goes about (10 - 2) / 4 s later
        assert len({round(w, 2) for w in waits}) >= 8
        other = await a.reserve_channel_slot("C2", 4.0, 2)
        assert other == 0.0  # another channel has its own budget
    finally:
        await a.close()
        await b.close()


async def test_push_back_holds_the_channel(redis_url: str) -> None:
    store = Store(connect(redis_url))
    try:
        await store.push_back_channel("C1", 3, 1.0, 3)
        wait = await store.reserve_channel_slot("C1", 1.0, 3)
        assert 2.5 <= wait <= 3.0
    finally:
        await store.close()


async def test_pending_updates_keep_the_newest(redis_url: str) -> None:
    store = Store(connect(redis_url))
    try:
        assert await store.set_pending_update("C1", "1.1", {"text": "one"}) is True
        assert await store.set_pending_update("C1", "1.1", {"text": "two"}) is False
        pending = await store.get_pending_update("C1", "1.1")
        assert pending is not None and pending.payload["text"] == "two"
        await store.set_pending_update("C1", "1.1", {"text": "three"})
        # The flush sent "two" while "three" arrived: it must not finish.
        assert await store.finish_pending_update("C1", "1.1", pending.version) is False
        newest = await store.get_pending_update("C1", "1.1")
        assert newest is not None and newest.payload["text"] == "three"
        assert await store.finish_pending_update("C1", "1.1", newest.version) is True
        assert await store.get_pending_update("C1", "1.1") is None
        assert await store.set_pending_update("C1", "1.1", {"text": "four"}) is True
    finally:
        await store.close()


async def test_audit_log_is_capped_and_newest_first(redis_url: str) -> None:
    store = Store(connect(redis_url))
    try:
        for i in range(5):
            await store.audit("U0ALICE", "test.decision", f"item-{i}", {"i": i})
        entries = await store.audit_recent(3)
        assert [e.subject for e in entries] == ["item-4", "item-3", "item-2"]
        assert entries[0].who == "U0ALICE" and entries[0].detail == {"i": 4}
        assert abs(entries[0].at - time.time()) < 60
    finally:
        await store.close()
