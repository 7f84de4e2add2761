"""What bot/builds relies on of any CI system (bot/builds/ports.py), held against every adapter.

Each adapter comes with a CI system to talk to (GitLab's: the emulator, whose runner moves the
pipelines), the refs it knows, and a way to make one job of the next run fail once. A new CI
system (Jenkins) adds its own entry to ADAPTERS and passes the same tests; its own details
(requests sent, errors mapped, webhooks) stay in its own test module.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import pytest

from bot.builds.ports import CISystem, Run, TestSummary
from bot.builds.progress import FINAL
from bot.errors import IntegrationError
from bot.sandbox.emulators.gitlab import GitLabEmulator
from bot.sandbox.emulators.jenkins import JenkinsEmulator
from integrations.gitlab.adapter import GitLabClient
from integrations.jenkins.ci import JenkinsCI
from integrations.jenkins.client import JenkinsHTTP


@dataclass(frozen=True)
class CI:
    """An adapter, connected to a CI system that has `project` with these refs."""

    port: CISystem
    project: str
    branch: str  # a branch other than the default one
    tag: str
    missing_run: int  # an id no run of `project` has
    fail_once: Callable[[], str]  # makes a job of the next run fail once; its name
    knows_refs: bool = True  # False: the system cannot tell branches, tags and typos apart


@asynccontextmanager
async def gitlab() -> AsyncIterator[CI]:
    emulator = GitLabEmulator()
    emulator.pipeline_step_seconds = 0.05

    def fail_once() -> str:
        emulator.fail_job("unit", times=1)
        return "unit"

    async with emulator.serve():
        assert emulator.url is not None
        client = GitLabClient(emulator.url, emulator.token)
        try:
            yield CI(client, "acme/web", "develop", "v1.0.0", 4242, fail_once)
        finally:
            await client.close()


@asynccontextmanager
async def jenkins() -> AsyncIterator[CI]:
    emulator = JenkinsEmulator()
    emulator.step_seconds = 0.05

    def fail_once() -> str:
        emulator.fail_stage("Test", times=1)
        return "Test"

    async with emulator.serve() as url:
        client = JenkinsCI(JenkinsHTTP(url, emulator.user, emulator.token))
        try:
            yield CI(client, "folder/legacy-build", "develop", "v1.0.0", 4242, fail_once, False)
        finally:
            await client.close()


ADAPTERS: dict[str, Callable[[], AbstractAsyncContextManager[CI]]] = {
    "gitlab": gitlab,
    "jenkins": jenkins,
}


@pytest.fixture(params=sorted(ADAPTERS))
async def ci(request: pytest.FixtureRequest) -> AsyncIterator[CI]:
    async with ADAPTERS[request.param]() as made:
        yield made


async def ended(ci: CI, run: Run) -> Run:
    """The run once it has ended, as the bot's poll would see it."""
    deadline = time.monotonic() + 20
    while True:
        now = await ci.port.get_run(ci.project, run.id)
        if now.status in FINAL:
            return now
        assert time.monotonic() < deadline, f"run {run.id} has not ended: {now.status}"
        await asyncio.sleep(0.02)


async def test_refs_are_branches_or_tags(ci: CI) -> None:
    default = await ci.port.default_branch(ci.project)
    assert await ci.port.ref_exists(ci.project, default) == "branch"
    assert await ci.port.ref_exists(ci.project, ci.branch) == "branch"
    assert await ci.port.ref_exists(ci.project, " ") is None
    if ci.knows_refs:
        assert await ci.port.ref_exists(ci.project, ci.tag) == "tag"
        assert await ci.port.ref_exists(ci.project, "no-such-ref") is None
    else:  # a missing branch fails in the build's checkout, not before
        assert await ci.port.ref_exists(ci.project, "no-such-ref") == "branch"


async def test_a_started_run_is_found_by_its_marker_only(ci: CI) -> None:
    since = time.time()
    run = await ci.port.start_run(ci.project, ci.branch, {"DEPLOY_ENV": "staging"}, marker="m1")
    # The bot keys what it follows by the project as it named it, and the run's id.
    assert (run.project, run.ref) == (ci.project, ci.branch) and run.id > 0
    found = await ci.port.find_run(ci.project, ci.branch, "m1", since)
    assert found is not None and found.id == run.id
    assert await ci.port.find_run(ci.project, ci.branch, "m2", since) is None
    assert await ci.port.find_run(ci.project, ci.tag, "m1", since) is None


async def test_the_same_request_twice_is_two_runs(ci: CI) -> None:
    since = time.time()
    one = await ci.port.start_run(ci.project, ci.branch, {}, marker="mone")
    two = await ci.port.start_run(ci.project, ci.branch, {}, marker="mtwo")
    assert one.id != two.id
    found = await ci.port.find_run(ci.project, ci.branch, "mtwo", since)
    assert found is not None and found.id == two.id


async def test_a_run_is_read_back_and_is_the_latest(ci: CI) -> None:
    run = await ci.port.start_run(ci.project, ci.branch, {}, marker="m1")
    assert (await ci.port.get_run(ci.project, run.id)).id == run.id
    latest = await ci.port.latest_run(ci.project)
    assert latest is not None and latest.id == run.id
    on_branch = await ci.port.latest_run(ci.project, ci.branch)
    assert on_branch is not None and on_branch.id == run.id
    assert await ci.port.latest_run(ci.project, ci.tag) is None


async def test_a_run_ends_with_its_jobs_and_tests(ci: CI) -> None:
    run = await ci.port.start_run(ci.project, ci.branch, {}, marker="m1")
    done = await ended(ci, run)
    assert done.status == "success" and done.url
    assert done.finished_at is not None and done.duration is not None
    jobs = await ci.port.run_jobs(ci.project, run.id)
    assert jobs and [j.id for j in jobs] == sorted(j.id for j in jobs)  # oldest first
    assert all(j.status in FINAL and j.name and j.stage for j in jobs)
    summary = await ci.port.test_summary(ci.project, run.id)
    assert summary is None or isinstance(summary, TestSummary)


async def test_a_failed_run_is_retried_with_new_jobs(ci: CI) -> None:
    failing = ci.fail_once()
    run = await ci.port.start_run(ci.project, ci.branch, {}, marker="m1")
    assert (await ended(ci, run)).status == "failed"
    before = {j.name: j for j in await ci.port.run_jobs(ci.project, run.id)}
    assert before[failing].status == "failed" and before[failing].failure_reason
    retried = await ci.port.retry_run(ci.project, run.id)
    # GitLab retries in place; Jenkins rebuilds with the same parameters, a newer run.
    assert retried.id >= run.id and retried.ref == run.ref
    again = await ci.port.retry_run(ci.project, run.id)
    assert again.id == retried.id  # a second Retry of the same run starts nothing more
    assert (await ended(ci, retried)).status == "success"
    after = {j.name: j for j in await ci.port.run_jobs(ci.project, retried.id)}
    assert after[failing].id > max(j.id for j in before.values())  # a retry is a newer job
    assert after[failing].status == "success"


async def test_cancelling_twice_is_fine(ci: CI) -> None:
    run = await ci.port.start_run(ci.project, ci.branch, {}, marker="m1")
    await ci.port.cancel_run(ci.project, run.id)
    assert (await ended(ci, run)).status == "canceled"
    again = await ci.port.cancel_run(ci.project, run.id)
    assert again.id == run.id and again.status == "canceled"


async def test_a_missing_run_is_an_integration_error(ci: CI) -> None:
    calls = (ci.port.get_run, ci.port.run_jobs, ci.port.cancel_run, ci.port.retry_run)
    for call in calls:
        with pytest.raises(IntegrationError) as caught:
            await call(ci.project, ci.missing_run)
        assert caught.value.system == ci.port.system and not caught.value.retryable
