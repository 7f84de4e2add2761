"""The rollout rules as pure functions, and their atomic application on a real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.deploys import rollout
from bot.deploys.ports import canary_count, plan
from bot.deploys.rollout import AWAITING, PROMOTING, Refused, Rollout
from bot.redis_conn import close, connect
from bot.store.deploys import DeployStore


def awaiting(**overrides: Any) -> Rollout:
    values: dict[str, Any] = {
        "id": "D-1",
        "service": "web",
        "version": "2",
        "stable": "1",
        "percents": [25, 50, 100],
        "approvals_needed": 1,
        "started_by": "U0ALICE",
        "channel": "C0DEPLOYS",
        "started_at": 0.0,
        "state": AWAITING,
        "step": 0,
        "requested_at": 0.0,
        "expires_at": 3600.0,
    }
    values.update(overrides)
    return Rollout(**values)


@pytest.mark.parametrize(
    ("percent", "replicas", "expected"),
    [(25, 4, 1), (50, 4, 2), (100, 4, 4), (10, 4, 1), (1, 3, 1), (60, 5, 3), (75, 10, 8)],
)
def test_canary_count_is_max_1_round_p_of_replicas(
    percent: int, replicas: int, expected: int
) -> None:
    assert canary_count(percent, replicas) == expected


def test_plan_splits_replicas_between_canary_and_stable() -> None:
    r = awaiting()
    assert plan(r, -1, 4) == {"1": 4}
    assert plan(r, 0, 4) == {"2": 1, "1": 3}
    assert plan(r, 1, 4) == {"2": 2, "1": 2}
    assert plan(r, 2, 4) == {"2": 4}
    assert plan(awaiting(stable=None, first=True), 2, 4) == {"2": 4}


def test_approval_rules() -> None:
    r = awaiting(approvals_needed=2)
    ok = {"may_approve": True, "blocking_alert": None}
    with pytest.raises(Refused, match="you may not approve"):
        rollout.approve(r, "D-1", "U0ALICE", 1.0, **ok)
    with pytest.raises(Refused, match="Only approvers"):
        rollout.approve(r, "D-1", "U0DAVE", 1.0, may_approve=False, blocking_alert=None)
    with pytest.raises(Refused, match="AL-7"):
        rollout.approve(r, "D-1", "U0BOB", 1.0, may_approve=True, blocking_alert="AL-7")
    with pytest.raises(Refused, match="expired"):
        rollout.approve(r, "D-1", "U0BOB", 3600.0, **ok)
    with pytest.raises(Refused, match="moved on"):
        rollout.approve(r, "D-0", "U0BOB", 1.0, **ok)
    with pytest.raises(Refused, match="earlier step"):
        rollout.approve(r, "D-1", "U0BOB", 1.0, step=-1, **ok)

    one, promotes = rollout.approve(r, "D-1", "U0BOB", 1.0, **ok)
    assert not promotes and one.approvals == ["U0BOB"] and one.state == AWAITING
    with pytest.raises(Refused, match="already approved"):
        rollout.approve(one, "D-1", "U0BOB", 1.0, **ok)
    two, promotes = rollout.approve(one, "D-1", "U0CAROL", 1.0, **ok)
    assert promotes and two.state == PROMOTING and two.target == 1
    with pytest.raises(Refused, match="already being promoted"):
        rollout.approve(two, "D-1", "U0DAVE", 1.0, **ok)


def test_a_step_applied_waits_for_the_next_approval_and_the_last_completes() -> None:
    r = awaiting(state=PROMOTING, target=1, approvals=["U0BOB"])
    at_50 = rollout.step_applied(r, "D-1", 10.0, 60.0)
    assert (at_50.state, at_50.step, at_50.approvals, at_50.expires_at) == (AWAITING, 1, [], 70.0)
    assert at_50.history[-1]["approved_by"] == ["U0BOB"]
    done = rollout.step_applied(awaiting(state=PROMOTING, step=1, target=2), "D-1", 20.0, 60.0)
    assert done.state == "complete" and done.percent == 100
    with pytest.raises(rollout.Stale):
        rollout.step_applied(done, "D-1", 30.0, 60.0)


def test_one_rollout_per_service() -> None:
    with pytest.raises(Refused, match="already deploying 2"):
        rollout.start(awaiting(), awaiting(id="D-2", version="3"))
    finished = awaiting(state="complete")
    assert rollout.start(finished, awaiting(id="D-2")).id == "D-2"


async def test_two_decisions_at_the_same_moment_are_judged_one_after_the_other(
    redis_url: str,
) -> None:
    redis = connect(redis_url)
    store = DeployStore(redis)
    try:
        await store.change("web", lambda _: (awaiting(), None))

        def approve_as(user: str) -> Any:
            def decide(cur: Rollout | None) -> tuple[Rollout, bool]:
                return rollout.approve(cur, "D-1", user, 1.0, may_approve=True, blocking_alert=None)

            return decide

        async def attempt(user: str) -> str:
            try:
                await store.change("web", approve_as(user))
            except Refused as e:
                return e.problem
            return "approved"

        results = await asyncio.gather(*(attempt(f"U0APPROVER{i}") for i in range(10)))
        assert results.count("approved") == 1, results
        stored = await store.load("web")
        assert stored is not None and stored.state == PROMOTING and len(stored.approvals) == 1
    finally:
        await redis.flushdb()
        await close(redis)


def test_a_system_that_starts_over_restarts_a_failed_or_rolled_back_rollout_at_step_0() -> None:
    rejected = awaiting(state="rolled_back", step=1, ended_by="U0BOB", approvals=["U0BOB"])
    with pytest.raises(Refused):  # a system that keeps nothing: nothing to promote
        rollout.promote(rejected, "U0ALICE", 10.0, 60.0)
    again, what = rollout.promote(rejected, "U0ALICE", 10.0, 60.0, restart=True)
    assert what == "restart" and again.state == PROMOTING
    assert (again.step, again.target, again.ended_by, again.approvals) == (-1, 0, None, [])
    assert again.tries == rejected.tries + 1

    failed = awaiting(state="failed", step=1, target=2, error="boom")
    retried, what = rollout.promote(failed, "U0ALICE", 10.0, 60.0)
    assert what == "retry" and (retried.step, retried.target) == (1, 2)


def test_a_rollout_its_system_gave_up_on_fails_where_it_stands_only_while_awaiting() -> None:
    r = awaiting(step=1, approvals=["U0BOB"])
    failed = rollout.gave_up(r, "D-1", "Argo aborted it")
    assert failed.state == "failed" and failed.approvals == [] and failed.target == 1
    assert rollout.describe_state(failed) == "failed at 50%"
    with pytest.raises(rollout.Stale):
        rollout.gave_up(awaiting(state=PROMOTING), "D-1", "late")


async def test_one_follower_at_a_time_holds_a_service(redis_url: str) -> None:
    redis = connect(redis_url)
    store = DeployStore(redis)
    try:
        async with (
            store.following("web", 5) as first,
            store.following("web", 5) as second,
            store.following("api", 5) as other,
        ):
            assert (first, second, other) == (True, False, True)
        async with store.following("web", 5) as after:
            assert after, "released when its holder is done"
    finally:
        await close(redis)
