"""The emulated GitLab's CI: pipelines whose jobs run by themselves, stage after stage.

A pipeline holds jobs from its project's definition (default: build: compile; test: unit, lint;
deploy: package). Every `step_seconds` a busy pipeline makes one move, as runners would:

    jobs pending -> running; jobs running -> success or failed; the next stage's jobs -> pending

so a fresh pipeline goes created -> pending -> running -> success in seven moves. The pipeline's
own status is derived from its jobs the way GitLab derives it (`Ci::Status::Composite`): a job
allowed to fail leaves "success" with warnings; a failed stage skips the later ones; a manual job
waits in "manual" (blocking the next stages unless it is allowed to fail, as `when: manual`
jobs are by default). Cancel, retry and play change jobs as GitLab's services do, and every
status change is told to the listeners (the webhooks).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .http import ApiError

log = logging.getLogger(__name__)

# A pipeline or job in one of these is done (GitLab's COMPLETED_STATUSES).
COMPLETED = frozenset({"success", "failed", "canceled", "skipped"})
# Jobs that cancelling a pipeline cancels (manual jobs stay manual).
CANCELABLE = frozenset(
    {"created", "waiting_for_resource", "preparing", "pending", "running", "scheduled"}
)
RETRYABLE = frozenset({"failed", "canceled"})


@dataclass(frozen=True)
class JobSpec:
    """A job of the emulated `.gitlab-ci.yml`.

    `when` is "on_success" or "manual"; `allow_failure` None means GitLab's default (True for
    manual jobs, else False). `tests` is how many test cases the job reports (a JUnit report),
    of which `skipped_tests` are skipped and, when the job fails, `failing_tests` failed.
    """

    name: str
    stage: str
    when: str = "on_success"
    allow_failure: bool | None = None
    tests: int = 0
    skipped_tests: int = 0
    failing_tests: int = 3
    environment: str | None = None

    @property
    def allowed_to_fail(self) -> bool:
        return self.when == "manual" if self.allow_failure is None else self.allow_failure


DEFAULT_JOBS = (
    JobSpec("compile", "build"),
    JobSpec("unit", "test", tests=42, skipped_tests=2),
    JobSpec("lint", "test"),
    JobSpec("package", "deploy"),
)


@dataclass
class JobFailure:
    """A switch: the job named `name` fails (in one project or pipeline), `times` times."""

    name: str
    project_id: int | None = None
    pipeline_id: int | None = None
    times: int | None = None
    reason: str = "script_failure"

    def matches(self, pipeline: PipelineRecord, job: JobRecord) -> bool:
        return (
            job.name == self.name
            and self.project_id in (None, pipeline.project_id)
            and self.pipeline_id in (None, pipeline.id)
        )


@dataclass
class JobRecord:
    id: int
    spec: JobSpec
    stage_index: int
    user_id: int
    created_at: datetime
    status: str = "created"
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    failure_reason: str | None = None
    retried: bool = False
    retries_count: int = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def stage(self) -> str:
        return self.spec.stage

    @property
    def allow_failure(self) -> bool:
        return self.spec.allowed_to_fail

    def duration(self, now: datetime) -> float | None:
        if self.started_at is None:
            return None
        return ((self.finished_at or now) - self.started_at).total_seconds()

    def queued_duration(self, now: datetime) -> float | None:
        if self.queued_at is None:
            return None
        return ((self.started_at or now) - self.queued_at).total_seconds()


@dataclass
class PipelineRecord:
    id: int
    iid: int
    project_id: int
    ref: str
    tag: bool
    sha: str
    before_sha: str
    source: str
    user_id: int
    variables: list[tuple[str, str, str]]  # key, value, variable_type
    stages: list[str]
    created_at: datetime
    updated_at: datetime
    jobs: list[JobRecord] = field(default_factory=list)
    status: str = "created"
    warnings: bool = False  # success with allowed failures ("passed with warnings")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: int | None = None
    queued_duration: int | None = None
    next_move_at: float | None = None  # time.monotonic() of its next move; None: idle

    @property
    def latest_jobs(self) -> list[JobRecord]:
        """The jobs GitLab shows: each retried job replaced by its retry."""
        return [j for j in self.jobs if not j.retried]

    def job(self, job_id: int) -> JobRecord | None:
        return next((j for j in self.jobs if j.id == job_id), None)


# Told of every change: (pipeline, None) when the pipeline's status changed, (pipeline, job)
# when a job's did.
Listener = Callable[[PipelineRecord, JobRecord | None], None]


def composite_status(jobs: Iterable[JobRecord]) -> tuple[str | None, bool]:
    """GitLab's status of a group of jobs, and whether it succeeded with warnings."""
    keys: set[str] = set()
    for job in jobs:
        if job.allow_failure and job.status == "failed":
            keys.add("success_with_warnings")
        elif job.allow_failure and job.status in ("canceled", "manual"):
            keys.add("ignored")
        else:
            keys.add(job.status)
    if not keys:
        return None, False
    soft = {"success_with_warnings", "ignored"}

    def only(*statuses: str) -> bool:
        return keys <= set(statuses) | soft

    def any_of(*statuses: str) -> bool:
        return bool(keys & set(statuses))

    ordered: list[tuple[bool, str]] = [
        (keys <= {"skipped", "ignored"}, "skipped"),
        (only("success", "skipped"), "success"),
        (only("created"), "created"),
        (only("preparing"), "preparing"),
        (only("canceled", "success", "skipped"), "canceled"),
        (only("pending", "created", "skipped"), "pending"),
        (any_of("running", "pending"), "running"),
        (any_of("waiting_for_resource"), "waiting_for_resource"),
        (any_of("manual"), "manual"),
        (any_of("scheduled"), "scheduled"),
        (any_of("preparing"), "preparing"),
        (any_of("created"), "running"),
        (any_of("canceling"), "canceling"),
    ]
    status = next((name for matched, name in ordered if matched), "failed")
    return status, status == "success" and "success_with_warnings" in keys


class CI:
    """Every pipeline of the instance, the switches that shape their runs, and the runner."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.pipelines: dict[int, PipelineRecord] = {}
        self.definitions: dict[int, tuple[JobSpec, ...]] = {}
        self.failures: list[JobFailure] = []
        self.listeners: list[Listener] = []
        # Seconds between two moves of a busy pipeline; None: only `advance()` moves them.
        self.step_seconds: float | None = 1.0
        # True: pipeline variables are refused, as on projects that restrict them to no one
        # (GitLab.com's default for new projects since 17.7).
        self.variables_restricted = False
        # Ids far apart from iids and from each other, so a mix-up shows in tests.
        self._next_pipeline_id = 1000
        self._next_job_id = 5000

    # -- queries --------------------------------------------------------------------------

    def of_project(self, project_id: int) -> list[PipelineRecord]:
        return [p for p in self.pipelines.values() if p.project_id == project_id]

    def find(self, project_id: int, pipeline_id: int) -> PipelineRecord:
        found = self.pipelines.get(pipeline_id)
        if found is None or found.project_id != project_id:
            raise ApiError(404, {"message": "404 Not found"})
        return found

    def find_job(self, project_id: int, job_id: int) -> tuple[PipelineRecord, JobRecord]:
        for pipeline in self.of_project(project_id):
            job = pipeline.job(job_id)
            if job is not None:
                return pipeline, job
        raise ApiError(404, {"message": "404 Not found"})

    def definition(self, project_id: int) -> tuple[JobSpec, ...]:
        return self.definitions.get(project_id, DEFAULT_JOBS)

    # -- changes --------------------------------------------------------------------------

    def create(
        self,
        project_id: int,
        ref: str,
        *,
        tag: bool,
        sha: str,
        before_sha: str,
        source: str,
        user_id: int,
        variables: Sequence[tuple[str, str, str]] = (),
    ) -> PipelineRecord:
        now = self.clock()
        specs = self.definition(project_id)
        stages = list(dict.fromkeys(s.stage for s in specs))
        pipeline = PipelineRecord(
            id=self._next_pipeline_id,
            iid=len(self.of_project(project_id)) + 1,
            project_id=project_id,
            ref=ref,
            tag=tag,
            sha=sha,
            before_sha=before_sha,
            source=source,
            user_id=user_id,
            variables=list(variables),
            stages=stages,
            created_at=now,
            updated_at=now,
        )
        self._next_pipeline_id += 1
        for spec in specs:
            pipeline.jobs.append(self._new_job(spec, stages.index(spec.stage), user_id, now))
        self.pipelines[pipeline.id] = pipeline
        self._tell(pipeline, None)
        for job in pipeline.jobs:
            self._tell(pipeline, job)
        self._wake(pipeline)
        return pipeline

    def cancel(self, pipeline: PipelineRecord) -> None:
        """Cancels every job that has not finished (manual jobs stay playable)."""
        now = self.clock()
        for job in pipeline.latest_jobs:
            if job.status in CANCELABLE:
                job.status = "canceled"
                job.finished_at = now
                self._tell(pipeline, job)
        self._update(pipeline)

    def retry(self, pipeline: PipelineRecord, user_id: int) -> None:
        """Failed and canceled jobs get new jobs (new ids); skipped ones run again."""
        now = self.clock()
        changed = False
        for job in pipeline.latest_jobs:
            if job.status in RETRYABLE:
                job.retried = True
                clone = self._new_job(job.spec, job.stage_index, user_id, now)
                clone.retries_count = job.retries_count + 1
                pipeline.jobs.append(clone)
                self._tell(pipeline, clone)
                changed = True
            elif job.status == "skipped":
                job.status, job.queued_at, job.started_at, job.finished_at = (
                    "created",
                    None,
                    None,
                    None,
                )
                job.failure_reason = None
                self._tell(pipeline, job)
                changed = True
        if changed:
            self._process(pipeline)
            self._update(pipeline)
            self._wake(pipeline)

    def retry_job(self, pipeline: PipelineRecord, job: JobRecord, user_id: int) -> JobRecord:
        """Runs one failed or canceled job again as a new job (`POST /jobs/:id/retry`), as
        GitLab does; any other job, or one retried already, is `403 Job is not retryable`."""
        if job.status not in RETRYABLE or job.retried:
            raise ApiError(403, {"message": "403 Forbidden - Job is not retryable"})
        job.retried = True
        clone = self._new_job(job.spec, job.stage_index, user_id, self.clock())
        clone.retries_count = job.retries_count + 1
        pipeline.jobs.append(clone)
        self._tell(pipeline, clone)
        self._process(pipeline)
        self._update(pipeline)
        self._wake(pipeline)
        return clone

    def play(self, pipeline: PipelineRecord, job: JobRecord, user_id: int) -> None:
        """Starts a manual job (`POST /jobs/:id/play`); other jobs are not playable."""
        if job.status != "manual" or job.retried:
            raise ApiError(400, {"message": "400 Bad request - Unplayable Job"})
        job.status, job.queued_at, job.user_id = "pending", self.clock(), user_id
        self._tell(pipeline, job)
        self._update(pipeline)
        self._wake(pipeline)

    def advance(self, pipeline: PipelineRecord) -> bool:
        """One move of the runners; False when the pipeline had nothing left to do."""
        now = self.clock()
        latest = pipeline.latest_jobs
        running = [j for j in latest if j.status == "running"]
        pending = [j for j in latest if j.status == "pending"]
        for job in running:
            failure = self._failure_for(pipeline, job)
            job.status = "failed" if failure else "success"
            job.failure_reason = failure
            job.finished_at = now
            self._tell(pipeline, job)
        for job in pending:
            job.status, job.started_at = "running", now
            self._tell(pipeline, job)
        moved = self._process(pipeline) or bool(running or pending)
        self._update(pipeline)
        return moved

    # -- the runner -----------------------------------------------------------------------

    def advance_due(self) -> None:
        """Moves every busy pipeline whose time has come (the runner calls it)."""
        step = self.step_seconds
        if step is None:
            return
        for pipeline in list(self.pipelines.values()):
            due = pipeline.next_move_at
            if due is not None and time.monotonic() >= due:
                moved = self.advance(pipeline)
                pipeline.next_move_at = time.monotonic() + step if moved else None

    async def run(self) -> None:
        """Moves pipelines for as long as the emulator serves (cancelled at its shutdown)."""
        while True:
            try:
                self.advance_due()
            except Exception:  # one broken move must not stop every pipeline
                log.exception("the emulated GitLab runner failed to move a pipeline")
            step = self.step_seconds
            await asyncio.sleep(min(0.05, step / 4) if step else 0.05)

    # -- plumbing -------------------------------------------------------------------------

    def _new_job(self, spec: JobSpec, stage_index: int, user_id: int, now: datetime) -> JobRecord:
        job = JobRecord(self._next_job_id, spec, stage_index, user_id, now)
        self._next_job_id += 1
        return job

    def _wake(self, pipeline: PipelineRecord) -> None:
        step = self.step_seconds if self.step_seconds is not None else 0.0
        pipeline.next_move_at = time.monotonic() + step

    def _failure_for(self, pipeline: PipelineRecord, job: JobRecord) -> str | None:
        for failure in self.failures:
            if failure.matches(pipeline, job):
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self.failures.remove(failure)
                return failure.reason
        return None

    def _process(self, pipeline: PipelineRecord) -> bool:
        """Enqueues the jobs whose earlier stages are done, as GitLab's processing does."""
        now = self.clock()
        latest = pipeline.latest_jobs
        changed = False
        for index in range(len(pipeline.stages)):
            before, _ = composite_status(j for j in latest if j.stage_index < index)
            for job in (j for j in latest if j.stage_index == index and j.status == "created"):
                if before in (None, "success", "skipped"):
                    if job.spec.when == "manual":
                        job.status = "manual"
                    else:
                        job.status, job.queued_at = "pending", now
                elif before in ("failed", "canceled"):
                    job.status = "skipped" if before == "failed" else "canceled"
                else:
                    return changed  # an earlier stage is still at work or waits for a person
                self._tell(pipeline, job)
                changed = True
        return changed

    def _update(self, pipeline: PipelineRecord) -> None:
        status, warnings = composite_status(pipeline.latest_jobs)
        pipeline.warnings = warnings
        if status is None or status == pipeline.status:
            return
        now = self.clock()
        pipeline.status, pipeline.updated_at = status, now
        if status == "running" and pipeline.started_at is None:
            pipeline.started_at = now
            pipeline.queued_duration = round((now - pipeline.created_at).total_seconds())
        if status in COMPLETED:
            pipeline.finished_at = now
            started = pipeline.started_at or now
            pipeline.duration = round((now - started).total_seconds())
        else:
            pipeline.finished_at = pipeline.duration = None
        self._tell(pipeline, None)

    def _tell(self, pipeline: PipelineRecord, job: JobRecord | None) -> None:
        if job is None:
            pipeline.updated_at = self.clock()
        for listener in self.listeners:
            listener(pipeline, job)
