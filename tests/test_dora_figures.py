"""The four figures, computed from a known history (tests/dora_history.py) and by hand."""

from __future__ import annotations

from bot.feedback.dora import Period, figures, median, percentile
from bot.feedback.history import RolloutRecord
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
