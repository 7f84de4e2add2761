"""How far a pipeline has got, so that an older status arriving late never overwrites a newer
one (webhooks may come out of order, and polls race them).

A state is newer when it has newer jobs (a retry makes new job ids), else more progress in its
jobs, else a later pipeline status. Pipeline statuses are an open set: unknown ones rank as
"in progress".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

FINAL = frozenset({"success", "failed", "canceled", "skipped"})
_RANK = {
    "created": 0,
    "waiting_for_resource": 1,
    "preparing": 1,
    "pending": 1,
    "scheduled": 1,
    "manual": 1,
    "waiting_for_callback": 2,
    "running": 2,
    "canceling": 3,
}


def rank(status: str) -> int:
    return 4 if status in FINAL else _RANK.get(status, 2)


@dataclass(frozen=True)
class JobState:
    id: int
    name: str
    stage: str
    status: str
    web_url: str = ""
    failure_reason: str | None = None
    allow_failure: bool = False


def progress(status: str, jobs: Iterable[JobState]) -> tuple[int, int, int]:
    jobs = list(jobs)
    newest = max((j.id for j in jobs), default=0)
    # Only the newest attempt of each job counts: a retried job's old run is history.
    latest: dict[str, JobState] = {}
    for job in sorted(jobs, key=lambda j: j.id):
        latest[job.name] = job
    return newest, sum(rank(j.status) for j in latest.values()), rank(status)


def stages(jobs: Iterable[JobState]) -> list[tuple[str, str]]:
    """Each stage (in pipeline order) and its state, from the newest attempt of its jobs."""
    latest: dict[str, JobState] = {}
    order: list[str] = []
    for job in sorted(jobs, key=lambda j: j.id):  # first runs come first: the pipeline's order
        latest[job.name] = job
        if job.stage not in order:
            order.append(job.stage)
    out = []
    for stage in order:
        states = [j.status for j in latest.values() if j.stage == stage]
        if any(s == "failed" for s in states):
            state = "failed"
        elif any(s in ("running", "canceling") for s in states):
            state = "running"
        elif all(s in FINAL for s in states):
            state = "canceled" if any(s == "canceled" for s in states) else "success"
        else:
            state = "pending"
        out.append((stage, state))
    return out
