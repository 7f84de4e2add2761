"""The Jenkins adapter's own details against the emulator: auth, the queue, the marker and its
limits, faults. (What every CI system does is tests/test_ci_contract.py.)"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.errors import IntegrationError, OutcomeUnknown
from bot.sandbox.emulators.jenkins import JenkinsEmulator
from integrations.jenkins.ci import JenkinsCI
from integrations.jenkins.client import JenkinsHTTP

JOB = "folder/legacy-build"


@pytest.fixture
async def jenkins() -> AsyncIterator[JenkinsEmulator]:
    emulator = JenkinsEmulator()
    emulator.step_seconds = 0.05
    async with emulator.serve():
        yield emulator


@pytest.fixture
async def ci(jenkins: JenkinsEmulator) -> AsyncIterator[JenkinsCI]:
    assert jenkins.url is not None
    client = JenkinsCI(JenkinsHTTP(jenkins.url, jenkins.user, jenkins.token), queue_wait=0.5)
    yield client
    await client.close()


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


async def test_the_emulator_checks_auth_and_crumbs_as_jenkins_does(
    jenkins: JenkinsEmulator,
) -> None:
    url = f"{jenkins.url}/job/folder/job/legacy-build/buildWithParameters"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{jenkins.url}/api/json") as r:
            assert r.status == 401  # no anonymous reads
        async with http.post(url, headers=basic(jenkins.user, "wrong")) as r:
            assert r.status == 401
        async with http.post(url, headers=basic(jenkins.user, jenkins.password)) as r:
            assert r.status == 403 and "No valid crumb" in await r.text()
        async with http.post(url, headers=basic(jenkins.user, jenkins.token)) as r:
            assert r.status == 201 and "/queue/item/" in r.headers["Location"]


async def test_wrong_credentials_name_the_settings_and_never_the_token(
    jenkins: JenkinsEmulator,
) -> None:
    assert jenkins.url is not None
    client = JenkinsCI(JenkinsHTTP(jenkins.url, jenkins.user, "not-the-token-123"))
    try:
        with pytest.raises(IntegrationError) as caught:
            await client.default_branch(JOB)
    finally:
        await client.close()
    assert "OPSLOOP_JENKINS_TOKEN" in str(caught.value) and caught.value.system == "Jenkins"
    assert "not-the-token-123" not in str(caught.value)


async def test_a_missing_job_and_a_job_without_branch_say_what_to_fix(
    jenkins: JenkinsEmulator, ci: JenkinsCI
) -> None:
    with pytest.raises(IntegrationError, match="has no job `folder/nope`"):
        await ci.ref_exists("folder/nope", "main")
    jenkins.add_job("nobranch", {"DEPLOY_ENV": "x"})
    with pytest.raises(IntegrationError, match="add a string parameter BRANCH"):
        await ci.default_branch("nobranch")


async def test_a_build_waiting_in_the_queue_is_found_once_it_starts(
    jenkins: JenkinsEmulator, ci: JenkinsCI
) -> None:
    jenkins.state.queue_seconds = 1.5
    since = time.time()
    with pytest.raises(OutcomeUnknown, match="still in the queue"):
        await ci.start_run(JOB, "develop", {}, marker="m-queued")
    # While it waits, nobody can tell which build it is: a re-run must not start another.
    with pytest.raises(OutcomeUnknown):
        await ci.find_run(JOB, "develop", "m-queued", since)
    deadline = time.monotonic() + 5
    found = None
    while found is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        with contextlib.suppress(OutcomeUnknown):  # still queued
            found = await ci.find_run(JOB, "develop", "m-queued", since)
    assert found is not None and found.ref == "develop"
    assert len(jenkins.builds(JOB)) == 1


async def test_a_job_without_the_marker_parameter_is_built_but_cannot_be_found(
    jenkins: JenkinsEmulator, ci: JenkinsCI
) -> None:
    since = time.time()
    run = await ci.start_run("plain", "main", {}, marker="m-plain")
    assert run.id == 1
    [build] = jenkins.builds("plain")
    names = [p["name"] for p in build["actions"][0]["parameters"]]
    assert names == ["BRANCH"]  # Jenkins drops what the job does not declare
    assert await ci.find_run("plain", "main", "m-plain", since) is None


async def test_faults_are_retryable_and_name_jenkins(
    jenkins: JenkinsEmulator, ci: JenkinsCI
) -> None:
    jenkins.fail(503, times=1)
    with pytest.raises(IntegrationError) as caught:
        await ci.get_run(JOB, 1)
    assert caught.value.retryable and "503" in caught.value.message
    jenkins.fail(0, path="*/buildWithParameters", times=1)
    with pytest.raises(OutcomeUnknown):  # the answer was lost: it may have been queued
        await ci.start_run(JOB, "develop", {}, marker="m-lost")
