"""A known delivery history for the DORA tests: what each figure must be is worked out by hand
in the comments, from these records alone."""

from __future__ import annotations

from bot.feedback.history import Incident, LeadTime, RolloutRecord

H = 3600.0
DAY = 86_400.0


def known_history(now: float) -> tuple[list[RolloutRecord], dict[str, LeadTime], list[Incident]]:
    """Service `api` over the 7 days to `now`; T is 6 days ago.

    D-0 completed 10 days ago: outside a 7-day period.
    D-1 completed T+1h, lead 2h; AL-1 fired T+1.5h (within the 1h window): a failure.
    D-2 completed T+25h, lead 4h.
    D-3 rejected T+48.5h, rolled back T+48.75h: a failure, restored in 15m.
    D-4 completed T+73h (lead not measured: its tag is missing), rollback asked T+80h, done
        T+80.5h: a deployment and a failure, restored in 30m.
    D-5 failed T+96.5h and stays failed: restored when D-6 completes, T+100h: 3h 30m.
    D-6 completed T+100h, lead 6h.
    AL-1 resolved T+2h (30m); AL-2 fired T+130h, still firing: not restored.

    7 days: 4 deployments (D-1, D-2, D-4, D-6): 0.57/day, 4.0/week. Lead times 2h, 4h, 6h:
    median 4h, p90 6h, D-4 not measured. Ended 6 (D-1..D-6), failed 4 (D-1, D-3, D-4, D-5):
    67%. Restores 15m, 30m, 3h 30m, 30m: median 30m; 1 not restored.
    """
    t = now - 6 * DAY

    def rollout(n: int, version: str, start: float, **times: float | str) -> RolloutRecord:
        return RolloutRecord(
            id=f"D-{n}",
            service="api",
            version=version,
            previous="1.2" if n > 3 else f"1.{n - 1}",
            started_at=start,
            started_by="U0ALICE",
            approved_by=["U0BOB"],
            **times,  # type: ignore[arg-type]
        )

    rollouts = [
        rollout(0, "1.0", now - 10 * DAY, state="complete", completed_at=now - 10 * DAY + H),
        rollout(1, "1.1", t, state="complete", completed_at=t + H),
        rollout(2, "1.2", t + 24 * H, state="complete", completed_at=t + 25 * H),
        rollout(
            3,
            "1.3",
            t + 48 * H,
            state="rolled_back",
            rejected_at=t + 48.5 * H,
            rolled_back_at=t + 48.75 * H,
            ended_by="U0BOB",
        ),
        rollout(
            4,
            "1.4",
            t + 72 * H,
            state="rolled_back",
            completed_at=t + 73 * H,
            rollback_asked_at=t + 80 * H,
            rolled_back_at=t + 80.5 * H,
            ended_by="U0ALICE",
        ),
        rollout(5, "1.5", t + 96 * H, state="failed", failed_at=t + 96.5 * H),
        rollout(6, "1.6", t + 99 * H, state="complete", completed_at=t + 100 * H),
    ]
    leads = {
        "D-1": LeadTime(id="D-1", seconds=2 * H, commits=3, project="acme/api"),
        "D-2": LeadTime(id="D-2", seconds=4 * H, commits=1, project="acme/api"),
        "D-4": LeadTime(
            id="D-4", seconds=None, project="acme/api", reason="no tag `1.2` or `1.4` in acme/api"
        ),
        "D-6": LeadTime(id="D-6", seconds=6 * H, commits=2, project="acme/api"),
    }
    incidents = [
        Incident(ref="AL-1", service="api", fired_at=t + 1.5 * H, resolved_at=t + 2 * H),
        Incident(ref="AL-2", service="api", fired_at=t + 130 * H),
    ]
    return rollouts, leads, incidents
