"""The CI system (bot/builds/ports.py) on Jenkins: a project is a job's full name
(`folder/legacy-build`), a run is one of its builds, known by its number.

The ref is the job's `BRANCH` string parameter (its default is the default branch). Jenkins
cannot say whether a branch exists, so every non-empty ref is taken as a branch; a build of a
missing branch fails in its checkout. There are no tags.

Exactly once: the request's marker goes in the `OPSLOOP_REQUEST` parameter, which the job must
declare (a string parameter, empty default): Jenkins drops undeclared parameters (SECURITY-170).
A job without it is still built, but a start whose answer was lost cannot be found again.
Retry is a new build with the same parameters, its marker `retry-of-<n>`, so a second Retry
of the same build finds the first one's build instead of starting another.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bot.builds.ports import Run, RunJob, TestSummary
from bot.errors import IntegrationError, OutcomeUnknown
from integrations.jenkins.client import JSON, SYSTEM, JenkinsHTTP, NotFound, job_path

REQUEST_PARAMETER = "OPSLOOP_REQUEST"
BRANCH_PARAMETER = "BRANCH"
_LOOKBACK = 20  # builds a look goes through for the one a request made
_QUEUE_WAIT = 20.0  # seconds start_run follows a queue item before leaving it to find_run
_CLOCKS_APART = 120.0  # seconds Jenkins' clock and ours may differ
_BUILD_TREE = (
    "number,url,building,result,duration,timestamp,"
    "actions[parameters[name,value],lastBuiltRevision[SHA1]]"
)
_RESULTS = {
    "SUCCESS": "success",
    "FAILURE": "failed",
    "UNSTABLE": "failed",  # tests failed: a Retry is offered
    "ABORTED": "canceled",
    "NOT_BUILT": "skipped",
}
_STAGES = {
    "SUCCESS": "success",
    "FAILED": "failed",
    "UNSTABLE": "failed",
    "ABORTED": "canceled",
    "IN_PROGRESS": "running",
    "PAUSED_PENDING_INPUT": "manual",
    "NOT_EXECUTED": "created",
}


class JenkinsCI:
    """`CISystem` over Jenkins' JSON API."""

    system = SYSTEM

    def __init__(self, http: JenkinsHTTP, *, queue_wait: float = _QUEUE_WAIT) -> None:
        self.http = http
        self.queue_wait = queue_wait

    async def close(self) -> None:
        await self.http.close()

    # -- the job ----------------------------------------------------------------------------

    async def parameters(self, project: str) -> dict[str, str]:
        """The job's declared parameters and their defaults (`GET /job/.../api/json`)."""
        try:
            job = await self.http.get(f"{job_path(project)}/api/json", f"read job `{project}`")
        except NotFound:
            raise IntegrationError(
                SYSTEM, f"has no job `{project}`: check the project's `jenkins:` job path."
            ) from None
        declared: dict[str, str] = {}
        for prop in _dicts(job.get("property")):
            for definition in _dicts(prop.get("parameterDefinitions")):
                default = definition.get("defaultParameterValue") or {}
                value = default.get("value") if isinstance(default, dict) else None
                declared[str(definition.get("name"))] = "" if value is None else str(value)
        return declared

    async def ref_exists(self, project: str, ref: str) -> str | None:
        """Any non-empty ref is a branch (Jenkins cannot tell); the job must take BRANCH."""
        await self._branch_default(project)
        return "branch" if ref.strip() else None

    async def default_branch(self, project: str) -> str:
        """The default of the job's BRANCH parameter."""
        default = await self._branch_default(project)
        if not default:
            raise IntegrationError(
                SYSTEM,
                f"job `{project}`'s {BRANCH_PARAMETER} parameter has no default: name a ref.",
            )
        return default

    async def _branch_default(self, project: str) -> str:
        declared = await self.parameters(project)
        if BRANCH_PARAMETER not in declared:
            raise IntegrationError(
                SYSTEM,
                f"job `{project}` takes no {BRANCH_PARAMETER} parameter: add a string parameter "
                f"{BRANCH_PARAMETER} (the ref to build) to the job.",
            )
        return declared[BRANCH_PARAMETER]

    # -- starting ---------------------------------------------------------------------------

    async def start_run(
        self, project: str, ref: str, variables: Mapping[str, str], *, marker: str
    ) -> Run:
        """`POST /job/.../buildWithParameters` with BRANCH, the variables and the marker, then
        the queue item (`Location`) followed to its build."""
        declared = await self.parameters(project)
        wanted = {str(k): str(v) for k, v in variables.items()}
        if REQUEST_PARAMETER in wanted or BRANCH_PARAMETER in wanted:
            raise IntegrationError(
                SYSTEM, f"`{REQUEST_PARAMETER}` and `{BRANCH_PARAMETER}` are opsloop's to set."
            )
        unknown = sorted(set(wanted) - set(declared))
        if unknown:
            known = ", ".join(sorted(set(declared) - {REQUEST_PARAMETER})) or "none"
            raise IntegrationError(
                SYSTEM,
                f"job `{project}` declares no parameter {', '.join(unknown)} (Jenkins would drop "
                f"it); it takes: {known}.",
            )
        form = {**wanted, BRANCH_PARAMETER: ref}
        if REQUEST_PARAMETER in declared:
            form[REQUEST_PARAMETER] = marker
        return await self._queue_and_follow(project, form)

    async def _queue_and_follow(self, project: str, form: Mapping[str, str]) -> Run:
        _, headers = await self.http.post(
            f"{job_path(project)}/buildWithParameters",
            f"start a build of `{project}`",
            form,
            makes=True,
        )
        location = headers.get("Location", "")
        marker = "/queue/item/"
        if marker not in location:
            raise IntegrationError(SYSTEM, f"queued a build of `{project}` but said not where.")
        item = location[location.index(marker) :].rstrip("/")
        try:
            return await self._follow(project, item)
        except OutcomeUnknown:
            raise
        except IntegrationError as e:
            # Queued: the build is made, whatever befell the following; find_run finds it.
            raise OutcomeUnknown(SYSTEM, f"queued a build of `{project}`: {e.message}") from None

    async def _follow(self, project: str, item: str) -> Run:
        """The queue item's build once an executor has taken it (`GET /queue/item/<n>/api/json`,
        `executable`)."""
        deadline = time.monotonic() + self.queue_wait
        pause = 0.1
        while True:
            queued = await self.http.get(f"{item}/api/json", f"follow `{project}`'s queue item")
            if queued.get("cancelled"):
                raise IntegrationError(
                    SYSTEM, f"the build of `{project}` was cancelled in its queue."
                )
            executable = queued.get("executable")
            if isinstance(executable, dict) and isinstance(executable.get("number"), int):
                return await self.get_run(project, executable["number"])
            if time.monotonic() > deadline:
                why = queued.get("why") or "waiting"
                raise OutcomeUnknown(
                    SYSTEM, f"the build of `{project}` is still in the queue ({why})"
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)

    async def find_run(self, project: str, ref: str, marker: str, since: float) -> Run | None:
        """The newest builds' parameters read for BRANCH=`ref` and OPSLOOP_REQUEST=`marker`."""
        for build in await self._recent(project):
            params = _parameters(build)
            started = float(build.get("timestamp") or 0) / 1000
            if (
                params.get(REQUEST_PARAMETER) == marker
                and params.get(BRANCH_PARAMETER) == ref
                and started >= since - _CLOCKS_APART
            ):
                return _run(project, build)
        await self._not_queued(project, ref, marker)
        return None

    async def _not_queued(self, project: str, ref: str, marker: str) -> None:
        """OutcomeUnknown while a build with `marker` waits in Jenkins' queue (`GET
        /queue/api/json`): it is made, but has no number yet."""
        queue = await self.http.get("/queue/api/json", "read Jenkins' build queue")
        for item in _dicts(queue.get("items")):
            task = item.get("task")
            url = str(task.get("url") or "") if isinstance(task, dict) else ""
            params = _parameters(item)
            if (
                url.rstrip("/").endswith(job_path(project))
                and params.get(REQUEST_PARAMETER) == marker
                and params.get(BRANCH_PARAMETER) == ref
            ):
                why = item.get("why") or "waiting"
                raise OutcomeUnknown(
                    SYSTEM, f"the build of `{project}` is still in the queue ({why})"
                )

    async def _recent(self, project: str) -> list[JSON]:
        job = await self.http.get(
            f"{job_path(project)}/api/json",
            f"list the builds of `{project}`",
            {"tree": f"builds[{_BUILD_TREE}]{{0,{_LOOKBACK}}}"},
        )
        return _dicts(job.get("builds"))

    # -- following --------------------------------------------------------------------------

    async def get_run(self, project: str, run_id: int) -> Run:
        """`GET /job/.../<n>/api/json`."""
        try:
            build = await self.http.get(
                f"{job_path(project)}/{run_id}/api/json", f"read build #{run_id} of `{project}`"
            )
        except NotFound:
            raise IntegrationError(SYSTEM, f"has no build #{run_id} of `{project}`.") from None
        return _run(project, build)

    async def latest_run(self, project: str, ref: str | None = None) -> Run | None:
        for build in await self._recent(project):
            if ref is None or _parameters(build).get(BRANCH_PARAMETER) == ref:
                return _run(project, build)
        return None

    async def run_jobs(self, project: str, run_id: int) -> list[RunJob]:
        """The Pipeline's stages (`wfapi/describe`); a job without stages is one job."""
        run = await self.get_run(project, run_id)
        try:
            described = await self.http.get(
                f"{job_path(project)}/{run_id}/wfapi/describe",
                f"read the stages of build #{run_id} of `{project}`",
            )
        except NotFound:
            name = project.rsplit("/", 1)[-1]
            return [
                RunJob(
                    run_id * 1000,
                    name,
                    "build",
                    run.status,
                    run.url,
                    run.duration,
                    "script_failure" if run.status == "failed" else None,
                    False,
                )
            ]
        jobs = []
        for k, stage in enumerate(_dicts(described.get("stages"))):
            status = _STAGES.get(str(stage.get("status")), "running")
            if status == "created" and run.status in ("failed", "canceled", "success"):
                status = "skipped"
            millis = stage.get("durationMillis")
            jobs.append(
                RunJob(
                    id=run_id * 1000 + k,
                    name=str(stage.get("name")),
                    stage=str(stage.get("name")),
                    status=status,
                    url=run.url,
                    duration=millis / 1000
                    if isinstance(millis, int) and status != "created"
                    else None,
                    failure_reason="script_failure" if status == "failed" else None,
                    allow_failure=False,
                )
            )
        return jobs

    async def cancel_run(self, project: str, run_id: int) -> Run:
        """`POST /job/.../<n>/stop`; a finished build stays as it is."""
        await self.get_run(project, run_id)  # a missing build is named as such
        await self.http.post(
            f"{job_path(project)}/{run_id}/stop", f"stop build #{run_id} of `{project}`"
        )
        return await self.get_run(project, run_id)

    async def retry_run(self, project: str, run_id: int) -> Run:
        """A new build with #`run_id`'s parameters (marker `retry-of-<n>`): a new run. A second
        call finds the first one's build."""
        marker = f"retry-of-{run_id}"
        old = await self.get_run(project, run_id)
        found = await self.find_run(project, old.ref, marker, 0)
        if found is not None:
            return found
        build = await self.http.get(
            f"{job_path(project)}/{run_id}/api/json", f"read build #{run_id}"
        )
        form = _parameters(build)
        if REQUEST_PARAMETER in form:
            form[REQUEST_PARAMETER] = marker
        return await self._queue_and_follow(project, form)

    async def test_summary(self, project: str, run_id: int) -> TestSummary | None:
        """`GET /job/.../<n>/testReport/api/json`; None when the build published no tests."""
        try:
            report = await self.http.get(
                f"{job_path(project)}/{run_id}/testReport/api/json",
                f"read the tests of build #{run_id} of `{project}`",
            )
        except NotFound:
            return None
        passed, failed, skipped = (
            int(report.get(k) or 0) for k in ("passCount", "failCount", "skipCount")
        )
        failing = tuple(
            str(s.get("name"))
            for s in _dicts(report.get("suites"))
            if any(c.get("status") in ("FAILED", "REGRESSION") for c in _dicts(s.get("cases")))
        )
        return TestSummary(passed + failed + skipped, passed, failed, skipped, 0, failing)


def _dicts(value: Any) -> list[JSON]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _parameters(build: JSON) -> dict[str, str]:
    found: dict[str, str] = {}
    for action in _dicts(build.get("actions")):
        for p in _dicts(action.get("parameters")):
            found[str(p.get("name"))] = "" if p.get("value") is None else str(p.get("value"))
    return found


def _sha(build: JSON) -> str:
    for action in _dicts(build.get("actions")):
        revision = action.get("lastBuiltRevision")
        if isinstance(revision, dict) and isinstance(revision.get("SHA1"), str):
            return str(revision["SHA1"])
    return ""


def _run(project: str, build: JSON) -> Run:
    building = bool(build.get("building"))
    result = build.get("result")
    status = "running" if building or result is None else _RESULTS.get(str(result), "failed")
    started = datetime.fromtimestamp(float(build.get("timestamp") or 0) / 1000, UTC)
    duration = None if building else float(build.get("duration") or 0) / 1000
    finished = (
        None if duration is None else datetime.fromtimestamp(started.timestamp() + duration, UTC)
    )
    return Run(
        project=project,
        id=int(build.get("number") or 0),
        ref=_parameters(build).get(BRANCH_PARAMETER, ""),
        sha=_sha(build),
        status=status,
        url=str(build.get("url") or ""),
        started_at=started,
        finished_at=finished,
        duration=duration,
    )
