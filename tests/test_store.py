"""The store against a real Redis: idempotent enqueue, the shared channel budget, coalescing."""

from __future__ import annotations

import asyncio
import time

from bot.job_queue import JobQueue
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
        turns = await asyncio.gather(
            *(s.slack.take_turn("chat.postMessage", "C1", 4.0, 2) for s in (a, b) * 5)
        )
        assert all(t.reserved for t in turns)
        waits = [t.wait for t in turns]
        assert sorted(waits)[:2] == [0.0, 0.0]
        assert max(waits) >= 1.9  # the tenth goes about (10 - 2) / 4 s later
        assert len({round(w, 2) for w in waits}) >= 8
        other = await a.slack.take_turn("chat.postMessage", "C2", 4.0, 2)
        assert other.wait == 0.0  # another channel has its own budget
    finally:
        await a.close()
        await b.close()


async def test_a_429_pauses_the_method_for_everyone_then_the_channel_goes_one_by_one(
    redis_url: str,
) -> None:
    a, b = Store(connect(redis_url)), Store(connect(redis_url))
    try:
        await a.slack.pause("chat.postMessage", 3, channel="C1", rate=1.0, burst=3)
        for store, channel in ((a, "C1"), (b, "C1"), (b, "C2")):
            turn = await store.slack.take_turn("chat.postMessage", channel, 1.0, 3)
            assert not turn.reserved and 2.5 <= turn.wait <= 3.0
        assert 2.5 <= await b.slack.paused_for("chat.postMessage") <= 3.0
        assert await b.slack.paused_for("chat.update") == 0
        assert (await b.slack.take_turn("chat.update")).reserved
        # A shorter Retry-After later does not shorten the pause.
        await b.slack.pause("chat.postMessage", 1)
        assert await a.slack.paused_for("chat.postMessage") > 2
        # In a job a slot further than the limit is not taken.
        turn = await a.slack.take_turn("chat.postMessage", "C1", 1.0, 3, max_wait=1.0)
        assert not turn.reserved and turn.wait > 1.0
    finally:
        await a.close()
        await b.close()


async def test_pending_updates_keep_the_newest_and_one_flush_owns_them(redis_url: str) -> None:
    whole = Store(connect(redis_url))
    store = whole.slack
    try:
        assert await store.set_pending_update("C1", "1.1", {"text": "one"}) is True
        assert await store.set_pending_update("C1", "1.1", {"text": "two"}) is False
        pending = await store.claim_pending_update("C1", "1.1", "job-a")
        assert pending is not None and pending.payload["text"] == "two"
        # Another flush job finds the message taken.
        assert await store.claim_pending_update("C1", "1.1", "job-b") is None
        await store.set_pending_update("C1", "1.1", {"text": "three"})
        # The flush sent "two" while "three" arrived: it must not finish.
        assert await store.finish_pending_update("C1", "1.1", "job-a", pending.version) is False
        # Slack said wait: the flush keeps the message while it is deferred.
        assert await store.hold_pending_update("C1", "1.1", "job-a", 30) is True
        assert await store.set_pending_update("C1", "1.1", {"text": "four"}) is False
        assert await store.hold_pending_update("C1", "1.1", "job-b", 30) is False
        newest = await store.claim_pending_update("C1", "1.1", "job-a")
        assert newest is not None and newest.payload["text"] == "four"
        assert await store.finish_pending_update("C1", "1.1", "job-a", newest.version) is True
        assert await store.claim_pending_update("C1", "1.1", "job-a") is None
        assert await store.set_pending_update("C1", "1.1", {"text": "five"}) is True
    finally:
        await whole.close()


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
