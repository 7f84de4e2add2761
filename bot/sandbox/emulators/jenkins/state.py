"""What the emulated Jenkins holds: jobs (in folders), the build queue and builds, and how a
build moves through its Pipeline stages by itself, on the emulator's clock.

A build's state is computed from the clock when read (nothing runs in the background): stage
k of a build that started at t runs during [t + k*step, t + (k+1)*step). A chosen stage fails
(its build ends FAILURE, the later stages NOT_EXECUTED); `stop` aborts the running stage.
Undeclared parameters are dropped, as Jenkins does since SECURITY-170 (1.651.2) unless
`hudson.model.ParametersAction.keepUndefinedParameters` is set.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

DEFAULT_STAGES = ("Checkout", "Build", "Test")


@dataclass
class JobDef:
    """A Pipeline job; `path` is its full name ("folder/legacy-build")."""

    path: str
    parameters: dict[str, str]  # declared string parameters and their defaults
    stages: tuple[str, ...] = DEFAULT_STAGES
    tests: tuple[int, int, int] | None = (12, 0, 1)  # pass, fail, skip; None: no test report
    pipeline: bool = True  # False: a freestyle job (no wfapi)
    next_number: int = 1


@dataclass
class QueueItem:
    id: int
    job: str
    parameters: dict[str, str]
    cause_user: str
    queued_at: float  # clock
    queued_wall: float
    leaves_at: float  # clock: when an executor takes it
    build: int | None = None
    cancelled: bool = False


@dataclass
class Build:
    job: str
    number: int
    queue_id: int
    parameters: dict[str, str]
    cause_user: str
    started_at: float  # clock
    started_wall: float
    stages: tuple[str, ...]
    failing_stage: int | None
    sha: str
    tests: tuple[int, int, int] | None
    aborted_at: float | None = None


@dataclass
class StageState:
    name: str
    status: str  # SUCCESS, FAILED, ABORTED, IN_PROGRESS, NOT_EXECUTED
    started: float | None
    ended: float | None


@dataclass
class JenkinsState:
    clock: Callable[[], float] = time.monotonic
    step_seconds: float = 1.0
    queue_seconds: float = 0.0
    jobs: dict[str, JobDef] = field(default_factory=dict)
    queue: dict[int, QueueItem] = field(default_factory=dict)
    builds: dict[tuple[str, int], Build] = field(default_factory=dict)
    failing: dict[str, int] = field(default_factory=dict)  # stage name -> times left
    next_queue_id: int = 100

    def enqueue(self, job: JobDef, given: Mapping[str, str], user: str) -> QueueItem:
        values = dict(job.parameters)
        values.update({k: v for k, v in given.items() if k in job.parameters})
        now = self.clock()
        item = QueueItem(
            id=self.next_queue_id,
            job=job.path,
            parameters=values,
            cause_user=user,
            queued_at=now,
            queued_wall=time.time(),
            leaves_at=now + self.queue_seconds,
        )
        self.next_queue_id += 1
        self.queue[item.id] = item
        return item

    def settle(self) -> None:
        """Moves every queue item whose time has come onto an executor, oldest first."""
        now = self.clock()
        for item in sorted(self.queue.values(), key=lambda i: i.id):
            if item.build is None and not item.cancelled and item.leaves_at <= now:
                self._start(item)

    def _start(self, item: QueueItem) -> None:
        job = self.jobs[item.job]
        failing = None
        for k, stage in enumerate(job.stages):
            if self.failing.get(stage, 0) > 0:
                self.failing[stage] -= 1
                failing = k
                break
        number = job.next_number
        job.next_number += 1
        lag = self.clock() - item.leaves_at
        self.builds[(job.path, number)] = Build(
            job=job.path,
            number=number,
            queue_id=item.id,
            parameters=dict(item.parameters),
            cause_user=item.cause_user,
            started_at=item.leaves_at,
            started_wall=time.time() - lag,
            stages=job.stages,
            failing_stage=failing,
            sha=hashlib.sha1(f"{job.path}#{number}".encode()).hexdigest(),  # a commit's shape
            tests=job.tests,
        )
        item.build = number

    def stages(self, build: Build) -> list[StageState]:
        now, step = self.clock(), self.step_seconds
        out: list[StageState] = []
        over = False
        for k, name in enumerate(build.stages):
            start, end = build.started_at + k * step, build.started_at + (k + 1) * step
            if over or start > now:
                out.append(StageState(name, "NOT_EXECUTED", None, None))
                continue
            if build.aborted_at is not None and build.aborted_at < end:
                out.append(StageState(name, "ABORTED", start, build.aborted_at))
                over = True
            elif end > now:
                out.append(StageState(name, "IN_PROGRESS", start, None))
                over = True
            elif k == build.failing_stage:
                out.append(StageState(name, "FAILED", start, end))
                over = True
            else:
                out.append(StageState(name, "SUCCESS", start, end))
        return out

    def result(self, build: Build) -> tuple[bool, str | None, float | None]:
        """(building, result, ended at on the clock)."""
        stages = self.stages(build)
        statuses = [s.status for s in stages]
        if "IN_PROGRESS" in statuses:
            return True, None, None
        ended = max((s.ended for s in stages if s.ended is not None), default=build.started_at)
        if "ABORTED" in statuses or build.aborted_at is not None:
            return False, "ABORTED", build.aborted_at or ended
        if "FAILED" in statuses:
            return False, "FAILURE", ended
        if all(s == "SUCCESS" for s in statuses):
            if build.tests is not None and build.tests[1] > 0:
                return False, "UNSTABLE", ended
            return False, "SUCCESS", ended
        return True, None, None  # not started its first stage yet

    def stop(self, build: Build) -> None:
        if self.result(build)[0] and build.aborted_at is None:
            build.aborted_at = self.clock()
