"""The four figures, computed from a known history (tests/dora_history.py) and by hand."""

from __future__ import annotations

from dataclasses import replace

from bot.deploys.changes import audit_entry
from bot.deploys.rollout import Rollout
from bot.feedback.dora import Period, figures, median, percentile
from bot.feedback.history import RolloutRecord, advance, decided
from tests.dora_history import DAY, H, known_history

NOW = 1_800_000_000.0


def test_the_four_figures_match_the_hand_computed_ones() -> None:
    rollouts, leads, incidents = known_history(NOW)
    f = figures(rollouts, leads, incidents, Period(NOW - 7 * DAY, NOW), H)
    assert f.deployments == 4
    assert round(f.per_day, 2) == 0.57 and round(f.per_week, 1) == 4.0
    assert sorted(f.lead_times) == [2 * H, 4 * H, 6 * H]
    assert f.lead_median == 4 * H and f.lead_p90 == 6 * H
    assert [(u.rollout, u.reason) for u in f.unmeasured] == [
        ("D-4", "no tag `1.2` or `1.4` in acme/api")
    ]
    assert f.ended == 6
    assert sorted(f.failed) == ["D-1", "D-3", "D-4", "D-5"]
    assert f.failure_rate == 4 / 6
    assert sorted(f.restores) == [0.25 * H, 0.5 * H, 0.5 * H, 3.5 * H]
    assert f.restore_median == 0.5 * H
    assert f.unrestored == 1


def test_a_shorter_window_for_alerts_leaves_the_first_rollout_good() -> None:
    rollouts, leads, incidents = known_history(NOW)
    f = figures(rollouts, leads, incidents, Period(NOW - 7 * DAY, NOW), 0.25 * H)
    assert sorted(f.failed) == ["D-3", "D-4", "D-5"], "AL-1 fired 30m after D-1: outside 15m"


def test_a_period_with_nothing_in_it_has_no_figures() -> None:
    rollouts, leads, incidents = known_history(NOW)
    f = figures(rollouts, leads, incidents, Period(NOW - 30 * DAY, NOW - 20 * DAY), H)
    assert (f.deployments, f.ended, f.lead_median, f.failure_rate) == (0, 0, None, None)
    assert f.restore_median is None and f.unmeasured == []


def test_a_completed_rollout_without_a_measurement_is_not_measured_yet() -> None:
    r = RolloutRecord("D-9", "api", "2.0", "1.9", NOW - H, "U0ALICE", completed_at=NOW - 1)
    f = figures([r], {}, [], Period(NOW - DAY, NOW), H)
    assert [u.reason for u in f.unmeasured] == ["not measured yet"]


def test_median_and_percentile_by_hand() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0 and median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert percentile([float(n) for n in range(1, 11)], 90) == 9.0
    assert percentile([5.0], 90) == 5.0 and median([]) is None


def _rollout(**changes: object) -> Rollout:
    base = Rollout(
        id="D-7",
        service="api",
        version="2.0",
        stable="1.0",
        percents=[50, 100],
        approvals_needed=1,
        started_by="U0ALICE",
        channel="C0DEPLOYS",
        started_at=NOW,
        state="awaiting",
        step=0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _decide(
    record: RolloutRecord | None, before: Rollout | None, after: Rollout, at: float
) -> RolloutRecord:
    return advance(record, after, decided(before, after), at)


def test_a_reject_and_a_rollback_are_told_apart_by_the_decision() -> None:
    awaiting = _rollout()
    rec = _decide(None, None, awaiting, NOW)
    rejecting = _rollout(
        state="rolling_back",
        ended_by="U0BOB",
        outbox=[audit_entry("U0BOB", "deploy.rejected", "", {})],
    )
    rec = _decide(rec, awaiting, rejecting, NOW + 10)
    back = _rollout(state="rolled_back", ended_by="U0BOB", finished_at=NOW + 20)
    rec = _decide(rec, rejecting, back, NOW + 20)
    assert (rec.outcome, rec.failed_from, rec.rolled_back_at) == ("rejected", NOW + 10, NOW + 20)

    done = _rollout(state="complete", step=1, finished_at=NOW + 5)
    rec = _decide(None, None, done, NOW + 5)
    asked = _rollout(
        state="rolling_back",
        ended_by="U0ALICE",
        outbox=[audit_entry("U0ALICE", "deploy.rollback_requested", "", {})],
    )
    rec = _decide(rec, done, asked, NOW + 50)
    rec = _decide(rec, asked, _rollout(state="rolled_back", finished_at=NOW + 60), NOW + 60)
    assert (rec.outcome, rec.completed_at, rec.ended_at) == ("rolled_back", NOW + 5, NOW + 60)


def test_a_failed_step_retried_to_completion_is_a_good_deploy() -> None:
    failing = _rollout(
        state="failed", outbox=[audit_entry("opsloop", "deploy.failed", "", {"error": "x"})]
    )
    rec = _decide(None, _rollout(state="promoting"), failing, NOW + 1)
    assert rec.outcome == "failed" and rec.failed_at == NOW + 1
    rec = _decide(rec, failing, _rollout(state="complete", finished_at=NOW + 9), NOW + 9)
    assert rec.outcome == "completed" and rec.ended_at == NOW + 9


def test_flagger_failing_an_approved_canary_is_a_failed_change() -> None:
    approved = _rollout(state="complete", checksum="abc", finished_at=NOW + 1)
    rec = _decide(None, None, approved, NOW + 1)
    assert rec.gate and rec.outcome == "completed"
    failed = replace(
        approved, outbox=[audit_entry("opsloop", "deploy.canary_failed", "", {"event": ""})]
    )
    rec = _decide(rec, approved, failed, NOW + 30)
    assert (rec.outcome, rec.failed_from) == ("failed", NOW + 30)


def test_a_drained_outbox_decides_nothing_and_rewrites_nothing() -> None:
    entry = audit_entry("U0BOB", "deploy.approved", "", {})
    with_entry = _rollout(outbox=[entry], approvals=["U0BOB"])
    assert decided(_rollout(), with_entry) == ["deploy.approved"]
    assert decided(with_entry, _rollout(approvals=["U0BOB"])) == []
    rec = _decide(None, None, with_entry, NOW)
    assert _decide(rec, with_entry, _rollout(approvals=["U0BOB"]), NOW + 1) == rec
    assert RolloutRecord.from_json(rec.to_json()) == rec
