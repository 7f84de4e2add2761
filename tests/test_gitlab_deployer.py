"""The GitLab deployer: canary steps as manual jobs of a pipeline, played through the real
python-gitlab in GitLabClient against the GitLab emulator, whose runner moves the pipelines."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from bot.deploys.ports import Deployer, Snapshot, Unit
from bot.deploys.rollout import Rollout
from bot.errors import IntegrationError
from bot.sandbox.emulators.gitlab import EmulatedProject, GitLabEmulator, JobSpec
from integrations.docker.config import DockerService
from integrations.gitlab.adapter import GitLabClient, GitLabPort
from integrations.gitlab.config import GitLabService
from integrations.gitlab.deployer import GitLabDeployer
from integrations.gitlab.errors import UNAVAILABLE
from integrations.gitlab.jobs import DeploysPort
from integrations.gitlab.shapes import PipelineJob
from tests.servers import free_port

STEP = 0.05  # seconds per runner move
PLAYS = "*/jobs/*/play"
RETRIES = "*/jobs/*/retry"
# build runs by itself; canary and production wait for a person and block the stages after
# them; rollback waits beside canary without blocking anything (allowed to fail, GitLab's
# default for manual jobs).
JOBS = [
    JobSpec("build", "build"),
    JobSpec("canary", "canary", when="manual", allow_failure=False),
    JobSpec("rollback", "canary", when="manual"),
    JobSpec("production", "production", when="manual", allow_failure=False),
]


def service(**fields: Any) -> GitLabService:
    values: dict[str, Any] = {
        "deployer": "gitlab",
        "project": "acme/api",
        "ref": "main",
        "steps": [{"percent": 10, "job": "canary"}, {"percent": 100, "job": "production"}],
        "rollback_job": "rollback",
    }
    values.update(fields)
    return GitLabService.model_validate(values)


def rollout(version: str = "1.4.2", **fields: Any) -> Rollout:
    return Rollout(
        id="D-7",
        service="api",
        version=version,
        stable="1.4.1",
        percents=[10, 100],
        approvals_needed=1,
        started_by="U0ALICE",
        channel="C0API",
        started_at=time.time(),
        **fields,
    )


@pytest.fixture
async def emu() -> AsyncIterator[GitLabEmulator]:
    emulator = GitLabEmulator()
    emulator.pipeline_step_seconds = STEP
    emulator.set_pipeline_jobs("acme/api", JOBS)
    async with emulator.serve():
        yield emulator


@pytest.fixture
async def gitlab(emu: GitLabEmulator) -> AsyncIterator[GitLabClient]:
    assert emu.url is not None
    client = GitLabClient(emu.url, emu.token)
    yield client
    await client.close()


def target(gitlab: GitLabPort, step_timeout: float = 10.0, **fields: Any) -> GitLabDeployer:
    return GitLabDeployer("api", service(**fields), gitlab, step_timeout, poll_seconds=0.02)


async def prepared(t: GitLabDeployer, **fields: Any) -> Rollout:
    """A rollout with its pipeline made, as the rollout logic records prepare's fields."""
    r = rollout(**fields)
    while made := await t.prepare(r):
        r = replace(r, **made)
    return r


def statuses(emu: GitLabEmulator, pipeline_id: int | None) -> dict[str, str]:
    assert pipeline_id is not None
    return {j["name"]: j["status"] for j in emu.pipeline_jobs(pipeline_id)}


def job_id(emu: GitLabEmulator, pipeline_id: int | None, name: str) -> int:
    assert pipeline_id is not None
    [found] = [j["id"] for j in emu.pipeline_jobs(pipeline_id) if j["name"] == name]
    return int(found)


def played(emu: GitLabEmulator) -> list[str]:
    """The job ids the play endpoint was asked to start, in order."""
    return [r.path.split("/")[-2] for r in emu.requests_to(PLAYS, "POST")]


def retried(emu: GitLabEmulator) -> list[str]:
    """The job ids the retry endpoint was asked to run again, in order."""
    return [r.path.split("/")[-2] for r in emu.requests_to(RETRIES, "POST")]


def canary_waiting(emu: GitLabEmulator) -> tuple[int, int]:
    """A pipeline started by hand and moved by hand until its canary job waits for a person
    (build pending, running, success); (pipeline id, canary job id)."""
    emu.pipeline_step_seconds = None
    made = emu.start_pipeline("acme/api")
    emu.advance_pipelines(3)
    return made["id"], job_id(emu, made["id"], "canary")


async def failure(call: Awaitable[Any]) -> IntegrationError:
    with pytest.raises(IntegrationError) as caught:
        await call
    assert caught.value.system == "GitLab"
    return caught.value


def test_types_fit_the_ports(gitlab: GitLabClient) -> None:
    port: DeploysPort = gitlab
    whole: GitLabPort = gitlab
    deployer: Deployer = target(gitlab)
    assert port is whole and deployer.kind == "gitlab"


def test_a_service_without_a_project_is_refused(gitlab: GitLabClient) -> None:
    docker = DockerService.model_validate({"deployer": "docker", "image": "registry/acme/api"})
    with pytest.raises(ValueError, match="project"):
        GitLabDeployer("api", docker, gitlab, 10.0)


# -- the client's job calls --------------------------------------------------------------------


async def test_get_job_reads_one_job(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    emu.pipeline_step_seconds = None
    made = emu.start_pipeline("acme/api")
    canary = job_id(emu, made["id"], "canary")
    job = await gitlab.get_job("acme/api", canary)
    assert isinstance(job, PipelineJob)
    assert (job.id, job.name, job.stage, job.status) == (canary, "canary", "canary", "created")
    assert job.web_url == f"{emu.url}/acme/api/-/jobs/{canary}"
    error = await failure(gitlab.get_job("acme/api", 99999))
    assert error.message == "job #99999 of acme/api was not found"
    error = await failure(gitlab.get_job("acme/web", canary))  # another project's job
    assert error.message == f"job #{canary} of acme/web was not found"


async def test_play_job_starts_a_manual_job_once(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    pipeline_id, canary = canary_waiting(emu)
    assert statuses(emu, pipeline_id)["canary"] == "manual"
    job = await gitlab.play_job("acme/api", canary)
    assert (job.id, job.status) == (canary, "pending")
    assert statuses(emu, pipeline_id)["canary"] == "pending"
    assert played(emu) == [str(canary)]
    again = await gitlab.play_job("acme/api", canary)  # e.g. after a crash
    assert (again.id, again.status) == (canary, "pending")
    emu.advance_pipelines(2)
    assert statuses(emu, pipeline_id)["canary"] == "success"
    finished = await gitlab.play_job("acme/api", canary)  # GitLab would run it again
    assert finished.status == "success"
    assert played(emu) == [str(canary)]


async def test_play_job_explains_a_job_that_cannot_be_played(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.pipeline_step_seconds = None
    made = emu.start_pipeline("acme/api")
    production = job_id(emu, made["id"], "production")
    error = await failure(gitlab.play_job("acme/api", production))
    assert error.message == (
        f"GitLab cannot play job production (#{production}) of acme/api yet: it waits for "
        f"earlier stages of its pipeline; see {emu.url}/acme/api/-/jobs/{production}"
    )
    assert played(emu) == []
    error = await failure(gitlab.play_job("acme/api", 99999))
    assert error.message == "job #99999 of acme/api was not found"


async def test_play_job_maps_gitlabs_unplayable_job(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    pipeline_id, canary = canary_waiting(emu)
    emu.fail(400, path=PLAYS, body={"message": "400 Bad request - Unplayable Job"})
    error = await failure(gitlab.play_job("acme/api", canary))
    assert error.message == (
        f"GitLab refused to play job canary (#{canary}) of acme/api (it is manual: Unplayable "
        f"Job); see {emu.url}/acme/api/-/jobs/{canary}"
    )
    assert "glpat" not in str(error)
    assert statuses(emu, pipeline_id)["canary"] == "manual"


async def test_play_job_refused_because_someone_else_played_it_returns_the_job(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    _, canary = canary_waiting(emu)
    # The job is started (by a person, between our read and our play), then ours is refused.
    emu.fail(400, times=1, path=PLAYS, after_handling=True, body={"message": "Unplayable Job"})
    job = await gitlab.play_job("acme/api", canary)
    assert (job.id, job.status) == (canary, "pending")


async def test_play_whose_answer_was_lost_is_not_repeated(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    _, canary = canary_waiting(emu)
    emu.fail(504, times=1, path=PLAYS, after_handling=True)
    job = await gitlab.play_job("acme/api", canary)
    assert (job.id, job.status) == (canary, "pending")
    assert played(emu) == [str(canary)]  # the repeat found the job started


async def test_play_after_a_5xx_that_did_not_play_plays_it(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    _, canary = canary_waiting(emu)
    emu.fail(502, times=1, path=PLAYS)
    job = await gitlab.play_job("acme/api", canary)
    assert job.status == "pending"
    assert played(emu) == [str(canary), str(canary)]


async def test_play_that_keeps_failing_is_unavailable(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    pipeline_id, canary = canary_waiting(emu)
    emu.fail(500, path=PLAYS)
    error = await failure(gitlab.play_job("acme/api", canary))
    assert (error.message, error.retryable) == (UNAVAILABLE, True)
    assert statuses(emu, pipeline_id)["canary"] == "manual"


async def failed_once(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> tuple[GitLabDeployer, Rollout, int]:
    """A rollout whose canary job failed (once: a retry succeeds); and that job's id."""
    emu.fail_job("canary", project="acme/api", times=1)
    t = target(gitlab)
    r = await prepared(t)
    await failure(t.apply(r, 0))
    return t, r, job_id(emu, r.pipeline_id, "canary")


async def test_retry_job_runs_a_failed_job_again_once(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    _, r, failed = await failed_once(gitlab, emu)
    job = await gitlab.retry_job("acme/api", failed)
    assert job.name == "canary" and job.id > failed
    assert job_id(emu, r.pipeline_id, "canary") == job.id
    again = await gitlab.retry_job("acme/api", failed)  # e.g. the promote job run again
    assert again.id == job.id
    assert retried(emu) == [str(failed)]


async def test_retry_job_explains_a_job_that_cannot_run_again(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    pipeline_id, canary = canary_waiting(emu)
    error = await failure(gitlab.retry_job("acme/api", canary))
    assert error.message == (
        f"GitLab cannot retry job canary (#{canary}) of acme/api: it is manual, and only a "
        f"failed or canceled job can run again; see {emu.url}/acme/api/-/jobs/{canary}"
    )
    assert statuses(emu, pipeline_id)["canary"] == "manual"


async def test_a_retry_whose_answer_was_lost_is_not_repeated(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    _, r, failed = await failed_once(gitlab, emu)
    emu.fail(504, times=1, path=RETRIES, after_handling=True)
    job = await gitlab.retry_job("acme/api", failed)
    assert job.id == job_id(emu, r.pipeline_id, "canary") and job.id > failed
    assert retried(emu) == [str(failed)]  # the repeat found the new job


# -- prepare -----------------------------------------------------------------------------------


async def test_prepare_makes_one_pipeline_with_the_version(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.add_branch("acme/api", "release")
    t = target(gitlab, ref="release")
    r = rollout("2.0.0-rc.1")
    asked = await t.prepare(r)  # first the intent: nothing is started yet
    assert list(asked) == ["pipeline_asked_at"] and emu.pipelines("acme/api") == []
    r = replace(r, **asked)
    made = await t.prepare(r)
    [pipeline] = emu.pipelines("acme/api")
    assert made == {"pipeline_id": pipeline["id"], "pipeline_url": pipeline["web_url"]}
    assert (pipeline["ref"], pipeline["source"]) == ("release", "api")
    [version, request] = emu.ci.pipelines[pipeline["id"]].variables
    assert version == ("VERSION", "2.0.0-rc.1", "env_var") and request[0] == "OPSLOOP_REQUEST"
    assert await t.prepare(replace(r, **made)) == {}
    assert len(emu.pipelines("acme/api")) == 1


async def test_prepare_after_a_crash_finds_the_pipeline_it_made(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.pipeline_step_seconds = None
    older = emu.start_pipeline("acme/api")  # someone else's, before the rollout
    t = target(gitlab)
    r = rollout()
    r = replace(r, **await t.prepare(r))
    assert r.pipeline_asked_at is not None
    made = await t.prepare(r)
    # The process dies before recording the pipeline; the step runs again from the intent.
    again = await t.prepare(r)
    assert again == made
    assert sorted(p["id"] for p in emu.pipelines("acme/api")) == [older["id"], made["pipeline_id"]]
    # Another version is another pipeline, even from the same intent.
    other = await t.prepare(replace(r, version="1.4.3"))
    assert other["pipeline_id"] not in (older["id"], made["pipeline_id"])


async def test_prepare_without_a_ref_uses_the_default_branch() -> None:
    emulator = GitLabEmulator(projects=[EmulatedProject(2, "acme/api", "trunk", ("alice",))])
    emulator.pipeline_step_seconds = None
    async with emulator.serve() as url:
        client = GitLabClient(url, emulator.token)
        try:
            made = vars(await prepared(target(client, ref=None)))
        finally:
            await client.close()
    [pipeline] = emulator.pipelines("acme/api")
    assert (made["pipeline_id"], pipeline["ref"]) == (pipeline["id"], "trunk")


# -- apply -------------------------------------------------------------------------------------


async def test_steps_play_their_jobs_in_turn(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    t = target(gitlab)
    r = await prepared(t)
    # Right after the pipeline is made, canary waits behind build: apply must wait, then play.
    assert statuses(emu, r.pipeline_id)["canary"] == "created"
    canary = job_id(emu, r.pipeline_id, "canary")
    production = job_id(emu, r.pipeline_id, "production")

    await t.apply(r, 0)
    now = statuses(emu, r.pipeline_id)
    assert (now["build"], now["canary"], now["production"]) == ("success", "success", "manual")
    assert played(emu) == [str(canary)]

    requests = len(emu.requests)
    await t.apply(r, 0)  # a repeat: the job already succeeded
    assert played(emu) == [str(canary)]
    assert [q.method for q in emu.requests[requests:]] == ["GET"]  # one look at the jobs

    await t.apply(r, 1)
    assert statuses(emu, r.pipeline_id)["production"] == "success"
    assert played(emu) == [str(canary), str(production)]
    assert statuses(emu, r.pipeline_id)["rollback"] == "manual"


async def test_apply_after_a_crash_waits_for_the_job_it_played(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.pipeline_step_seconds = None
    t = target(gitlab)
    r = await prepared(t)
    emu.advance_pipelines(3)
    canary = job_id(emu, r.pipeline_id, "canary")
    await gitlab.play_job("acme/api", canary)  # played, then the bot went down
    emu.pipeline_step_seconds = STEP
    await t.apply(r, 0)
    assert statuses(emu, r.pipeline_id)["canary"] == "success"
    assert played(emu) == [str(canary)]


async def test_a_step_without_a_job_does_nothing(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    t = target(gitlab, steps=[{"percent": 10}, {"percent": 100, "job": "production"}])
    r = await prepared(t)
    requests = len(emu.requests)
    await t.apply(r, 0)
    assert len(emu.requests) == requests
    assert statuses(emu, r.pipeline_id)["canary"] in ("created", "manual")


async def test_a_failing_job_fails_the_step_naming_it(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.fail_job("canary", project="acme/api")
    t = target(gitlab)
    r = await prepared(t)
    error = await failure(t.apply(r, 0))
    canary = job_id(emu, r.pipeline_id, "canary")
    assert error.message == (
        f"job canary (#{canary}) failed: script_failure; see {emu.url}/acme/api/-/jobs/{canary}"
    )
    assert statuses(emu, r.pipeline_id)["production"] == "skipped"
    again = await failure(t.apply(r, 0))  # a repeat says the same, and plays nothing
    assert again.message == error.message
    assert played(emu) == [str(canary)]


async def test_a_skipped_job_fails_the_step(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    emu.fail_job("build", project="acme/api")
    t = target(gitlab)
    r = await prepared(t)
    error = await failure(t.apply(r, 0))
    canary = job_id(emu, r.pipeline_id, "canary")
    assert error.message.startswith(f"job canary (#{canary}) failed: skipped; see ")
    assert played(emu) == []


async def test_a_missing_job_is_a_clear_error(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    t = target(gitlab, steps=[{"percent": 10, "job": "canery"}, {"percent": 100, "job": "prod"}])
    r = await prepared(t)
    error = await failure(t.apply(r, 0))
    assert error.message == (
        f"pipeline #{r.pipeline_id} of acme/api has no job canery (its jobs: build, canary, "
        "rollback, production); check services.api.steps or the project's .gitlab-ci.yml; "
        f"see {r.pipeline_url}"
    )
    assert played(emu) == []


async def test_a_step_that_takes_too_long_times_out(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.pipeline_step_seconds = 30.0
    t = target(gitlab, step_timeout=0.3)
    r = await prepared(t)
    canary = job_id(emu, r.pipeline_id, "canary")
    started = time.monotonic()
    error = await failure(t.apply(r, 0))
    assert 0.3 <= time.monotonic() - started < 3.0
    assert error.message == (
        f"job canary (#{canary}) did not finish within 0.3 s (it is still created: it waits "
        "for earlier stages, where a manual job may need playing); "
        f"see {emu.url}/acme/api/-/jobs/{canary}"
    )
    assert played(emu) == []


async def test_a_played_job_that_runs_too_long_times_out(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.pipeline_step_seconds = None
    t = target(gitlab, step_timeout=0.3)
    r = await prepared(t)
    emu.advance_pipelines(3)  # canary waits for a person; nothing moves after that
    canary = job_id(emu, r.pipeline_id, "canary")
    started = time.monotonic()
    error = await failure(t.apply(r, 0))
    assert 0.3 <= time.monotonic() - started < 3.0
    assert error.message.startswith(
        f"job canary (#{canary}) did not finish within 0.3 s (it is still pending); see "
    )
    assert played(emu) == [str(canary)]


async def test_gitlab_down_is_an_integration_error_in_bounded_time(
    emu: GitLabEmulator,
) -> None:
    nothing = GitLabClient(f"http://127.0.0.1:{free_port()}", emu.token, timeout=1.0)
    try:
        t = target(nothing)
        started = time.monotonic()
        error = await failure(t.prepare(rollout(pipeline_asked_at=time.time())))
        assert (error.message, error.retryable) == (UNAVAILABLE, True)
        error = await failure(t.apply(rollout(pipeline_id=1000), 0))
        assert (error.message, error.retryable) == (UNAVAILABLE, True)
        assert time.monotonic() - started < 10.0
    finally:
        await nothing.close()


async def test_gitlab_stopping_mid_rollout_is_an_integration_error() -> None:
    emulator = GitLabEmulator()
    emulator.set_pipeline_jobs("acme/api", JOBS)
    async with emulator.serve() as url:
        client = GitLabClient(url, emulator.token)
        t = target(client)
        r = await prepared(t)
    try:
        started = time.monotonic()
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: t.apply(r, 0),
            lambda: t.revert(r),
            lambda: t.snapshot(r),
        ]
        for call in calls:
            error = await failure(call())
            assert (error.message, error.retryable) == (UNAVAILABLE, True)
        assert time.monotonic() - started < 10.0
    finally:
        await client.close()


async def test_a_rollout_without_a_pipeline_cannot_apply(gitlab: GitLabClient) -> None:
    error = await failure(target(gitlab).apply(rollout(), 0))
    assert error.message == "D-7 has no GitLab pipeline yet, so job canary cannot run"


# -- revert ------------------------------------------------------------------------------------


async def test_revert_plays_the_rollback_job(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    t = target(gitlab)
    r = await prepared(t)
    await t.apply(r, 0)
    await t.revert(r)
    now = statuses(emu, r.pipeline_id)
    assert (now["rollback"], now["production"]) == ("success", "manual")
    rollback = job_id(emu, r.pipeline_id, "rollback")
    assert played(emu)[-1] == str(rollback)
    await t.revert(r)  # a repeat plays nothing more
    assert played(emu).count(str(rollback)) == 1


async def test_revert_without_a_rollback_job_does_nothing(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    t = target(gitlab, rollback_job=None)
    r = await prepared(t)
    requests = len(emu.requests)
    await t.revert(r)
    assert len(emu.requests) == requests
    await target(gitlab).revert(rollout())  # no pipeline yet: nothing was deployed
    assert len(emu.requests) == requests


async def test_revert_with_a_missing_rollback_job_is_a_clear_error(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    t = target(gitlab, rollback_job="undo")
    r = await prepared(t)
    error = await failure(t.revert(r))
    assert error.message.startswith(f"pipeline #{r.pipeline_id} of acme/api has no job undo (")
    assert "check services.api.rollback_job" in error.message
    assert played(emu) == []


# -- snapshot ----------------------------------------------------------------------------------


async def test_snapshot_shows_the_pipelines_jobs(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    t = target(gitlab)
    assert await t.snapshot(None) == Snapshot()
    assert await t.snapshot(rollout()) == Snapshot()
    r = await prepared(t)
    await t.apply(r, 0)
    snap = await t.snapshot(r)
    ids = {name: job_id(emu, r.pipeline_id, name) for name in statuses(emu, r.pipeline_id)}
    url = f"{emu.url}/acme/api/-/jobs/"
    assert snap == Snapshot(
        units=(
            Unit("build", "1.4.2", "success", True, f"{url}{ids['build']}"),
            Unit("canary", "1.4.2", "success", True, f"{url}{ids['canary']}"),
            Unit("rollback", "1.4.2", "manual", False, f"{url}{ids['rollback']}"),
            Unit("production", "1.4.2", "manual", False, f"{url}{ids['production']}"),
        ),
        link=r.pipeline_url,
    )


async def test_running_versions_are_unknown(gitlab: GitLabClient, emu: GitLabEmulator) -> None:
    assert await target(gitlab).running_versions() is None
    assert emu.requests == []


async def test_the_newest_job_of_a_name_is_followed(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.fail_job("canary", project="acme/api", times=1)
    t = target(gitlab)
    r = await prepared(t)
    first = await failure(t.apply(r, 0))
    failed = job_id(emu, r.pipeline_id, "canary")
    assert f"job canary (#{failed}) failed: script_failure" in first.message
    assert r.pipeline_id is not None
    await gitlab.retry_pipeline("acme/api", r.pipeline_id)  # a new canary job, created again
    retried = job_id(emu, r.pipeline_id, "canary")
    assert retried > failed
    await t.apply(r, 0)
    assert statuses(emu, r.pipeline_id)["canary"] == "success"
    assert played(emu) == [str(failed), str(retried)]


async def test_a_failed_step_runs_again_only_when_a_person_asks(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    t, r, _ = await failed_once(gitlab, emu)
    await failure(t.apply(r, 0))  # by itself (a repeat after a crash) a failure stays one
    assert retried(emu) == []
    await t.retry(r)  # /deploy promote
    await t.apply(r, 0)
    assert statuses(emu, r.pipeline_id)["canary"] == "success"
    await t.retry(r)  # nothing failed now: nothing runs again
    assert len(retried(emu)) == 1


async def test_a_failed_rollback_runs_again_as_a_rollback(
    gitlab: GitLabClient, emu: GitLabEmulator
) -> None:
    emu.fail_job("rollback", project="acme/api", times=1)
    t = target(gitlab)
    r = await prepared(t, ended_by="U0BOB")
    await failure(t.revert(r))
    await t.retry(r)
    await t.revert(r)
    assert statuses(emu, r.pipeline_id)["rollback"] == "success"
    assert statuses(emu, r.pipeline_id)["canary"] in ("created", "manual")
