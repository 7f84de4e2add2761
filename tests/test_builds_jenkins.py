"""/build on Jenkins end to end: a signed command in, a build in the Jenkins emulator moving
through its Pipeline stages by itself, one live message edited in place; GitLab's project beside
it still builds on GitLab (the router)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from bot.builds.jenkins_hook import BadCall, job_name
from bot.config_file import OpsConfig, Project, Roles
from bot.sandbox.emulators.jenkins import JenkinsEmulator
from tests.harness import BotUnderTest, gitlab_env, running_bot, running_gitlab
from tests.waiting import eventually

LEGACY = "C0WEB"  # the Slack emulator's channels
JOB = "folder/legacy-build"
HOOK_TOKEN = "jenkins-hook-token"


def config() -> OpsConfig:
    return OpsConfig(
        roles=Roles(deployers=["U0ALICE"]),
        projects={
            "legacy": Project(jenkins=JOB, channel=LEGACY, protected_refs=["main"]),
            "web": Project(gitlab="acme/web", channel="C0GENERAL"),
        },
    )


def jenkins_env(emu: JenkinsEmulator) -> dict[str, str]:
    assert emu.url is not None
    return {
        "OPSLOOP_JENKINS_URL": emu.url,
        "OPSLOOP_JENKINS_USER": emu.user,
        "OPSLOOP_JENKINS_TOKEN": emu.token,
    }


@asynccontextmanager
async def jenkins_bot(
    redis_url: str, **env: Any
) -> AsyncIterator[tuple[BotUnderTest, JenkinsEmulator]]:
    jenkins = JenkinsEmulator()
    jenkins.step_seconds = 0.2
    async with jenkins.serve(), running_gitlab() as gitlab:
        gitlab.pipeline_step_seconds = 0.1
        settings: dict[str, Any] = {
            "OPSLOOP_BUILD_POLL_SECONDS": 0.2,
            **jenkins_env(jenkins),
            **gitlab_env(gitlab),
            **env,
        }
        async with running_bot(redis_url, config=config(), **settings) as bot:
            yield bot, jenkins


def shown(message: Any) -> str:
    return str(message.text) + json.dumps(message.blocks)


def live(bot: BotUnderTest, channel: str = LEGACY) -> Any:
    found = [m for m in bot.emulator.messages(channel) if "Pipeline" in m.text]
    return found[0] if len(found) == 1 else None


def ephemerals(bot: BotUnderTest, user: str = "U0ALICE") -> list[str]:
    return [e.text for e in bot.emulator.ephemerals(user=user)]


async def ended(bot: BotUnderTest, words: str, channel: str = LEGACY) -> tuple[Any, list[Any]]:
    await eventually(
        lambda: live(bot, channel) is not None and words in shown(live(bot, channel)),
        within=25,
        what=f"the live message to say {words}",
    )
    message = live(bot, channel)
    replies = await eventually(
        lambda: [r for r in bot.emulator.thread(channel, message.ts) if "after" in r.text],
        what="the result in the thread",
    )
    return message, replies


async def test_a_jenkins_build_is_followed_through_its_stages(redis_url: str) -> None:
    async with jenkins_bot(redis_url) as (bot, jenkins):
        resp = await bot.driver.command(
            "/build", "legacy develop DEPLOY_ENV=prod", user="U0CAROL", channel=LEGACY
        )
        assert resp.status == 200 and resp.elapsed_ms < 3000
        message, replies = await ended(bot, "*passed*")
        [build] = jenkins.builds(JOB)
        params = {p["name"]: p["value"] for p in build["actions"][0]["parameters"]}
        assert params["BRANCH"] == "develop" and params["DEPLOY_ENV"] == "prod"
        assert params["OPSLOOP_REQUEST"]  # the marker, declared by the job
        text = shown(message)
        assert "Checkout" in text and "Build" in text and "Test" in text  # the stages
        assert build["url"] in text and "<@U0CAROL>" in text and "prod" not in text
        assert len(message.edits) >= 2
        assert "Tests: 12 passed, 0 failed, 1 skipped" in replies[-1].text
        [entry] = [
            e for e in await bot.deps.store.audit_recent(10) if e.action == "build.triggered"
        ]
        assert entry.subject == f"{JOB}#{build['number']}"
        await bot.driver.command("/build", "status legacy", user="U0CAROL", channel=LEGACY)
        said = await eventually(
            lambda: [t for t in ephemerals(bot, "U0CAROL") if "passed" in t], what="the status"
        )
        assert JOB in said[-1] and f"#{build['number']}" in said[-1]
        # No crumb was asked for: an API token needs none.
        assert not any("crumb" in r.path.lower() for r in jenkins.requests)
        # GitLab's project beside it still builds on GitLab.
        await bot.driver.command("/build", "web", user="U0ALICE", channel="C0GENERAL")
        await ended(bot, "*passed*", channel="C0GENERAL")
        assert len(jenkins.builds(JOB)) == 1


async def test_a_failed_build_is_rebuilt_once_with_its_parameters(redis_url: str) -> None:
    async with jenkins_bot(redis_url) as (bot, jenkins):
        jenkins.fail_stage("Test")
        await bot.driver.command(
            "/build", "legacy develop DEPLOY_ENV=qa", user="U0ALICE", channel=LEGACY
        )
        message, replies = await ended(bot, "*failed*")
        assert "Retry" in shown(message) and "Test" in replies[-1].text
        await bot.driver.click("Retry", user="U0ALICE", channel=LEGACY)
        await ended(bot, "*passed*")
        builds = jenkins.builds(JOB)
        assert [b["number"] for b in builds] == [2, 1]
        again = {p["name"]: p["value"] for p in builds[0]["actions"][0]["parameters"]}
        assert again["DEPLOY_ENV"] == "qa" and again["BRANCH"] == "develop"
        assert "#2" in shown(live(bot))  # the same message follows the rebuild
        await eventually(
            lambda: any("passed" in r.text for r in bot.emulator.thread(LEGACY, message.ts)),
            what="the rebuild's result",
        )
        assert "build.retried" in [e.action for e in await bot.deps.store.audit_recent(10)]


async def test_cancel_stops_the_build(redis_url: str) -> None:
    async with jenkins_bot(redis_url) as (bot, jenkins):
        jenkins.step_seconds = 1.0
        await bot.driver.command("/build", "legacy develop", user="U0ALICE", channel=LEGACY)
        await eventually(lambda: live(bot) and "Cancel" in shown(live(bot)), what="Cancel")
        await bot.driver.click("Cancel", user="U0ALICE", channel=LEGACY)
        await ended(bot, "was *canceled*")
        assert jenkins.builds(JOB)[0]["result"] == "ABORTED"
        assert any(r.path.endswith("/1/stop") for r in jenkins.requests)


async def test_protected_branch_and_unknown_parameters_are_refused(redis_url: str) -> None:
    async with jenkins_bot(redis_url) as (bot, jenkins):
        await bot.driver.command("/build", "legacy", user="U0CAROL", channel=LEGACY)
        await bot.driver.command(
            "/build", "legacy develop COLOUR=red", user="U0CAROL", channel=LEGACY
        )
        texts = await eventually(
            lambda: t if len(t := ephemerals(bot, "U0CAROL")) >= 2 else None,
            within=20,
            what="both refusals",
        )
        assert any("`main` is protected" in t for t in texts)  # BRANCH's default
        assert any("Jenkins" in t and "COLOUR" in t and "DEPLOY_ENV" in t for t in texts)
        assert jenkins.builds(JOB) == []


async def test_jenkins_down_or_refusing_is_a_clear_message(redis_url: str) -> None:
    async with jenkins_bot(redis_url) as (bot, jenkins):
        jenkins.fail(0)
        await bot.driver.command("/build", "legacy develop", user="U0ALICE", channel=LEGACY)
        texts = await eventually(lambda: ephemerals(bot), within=30, what="the answer")
        assert "Jenkins" in texts[-1]
        jenkins.heal()
        jenkins.token = "rotated"
        await bot.driver.command("/build", "legacy develop", user="U0ALICE", channel=LEGACY)
        texts = await eventually(
            lambda: t if len(t := ephemerals(bot)) >= 2 else None, within=30, what="refusal"
        )
        assert "OPSLOOP_JENKINS_TOKEN" in texts[-1]
        assert "11aa22bb" not in " ".join(texts)
        assert jenkins.builds(JOB) == []


async def test_notifications_move_the_message_before_the_next_poll(redis_url: str) -> None:
    env = {"OPSLOOP_JENKINS_WEBHOOK_TOKEN": HOOK_TOKEN, "OPSLOOP_BUILD_POLL_SECONDS": 20}
    async with jenkins_bot(redis_url, **env) as (bot, jenkins):
        jenkins.notify(f"{bot.base_url}/hooks/jenkins?token={HOOK_TOKEN}")
        await bot.driver.command("/build", "legacy develop", user="U0ALICE", channel=LEGACY)
        # The first poll is 20 s away: only the notifications can bring the end this soon.
        message, replies = await ended(bot, "*passed*")
        assert "Tests: 12 passed" in replies[-1].text
        phases = [d.body["build"]["phase"] for d in jenkins.notifier.deliveries]
        assert "COMPLETED" in phases and {d.status for d in jenkins.notifier.deliveries} == {202}
        # The same call again is taken once, and changes nothing.
        assert len([r for r in bot.emulator.thread(LEGACY, message.ts) if "after" in r.text]) == 1


async def test_the_jenkins_route_guards_itself(redis_url: str) -> None:
    good = {
        "name": "legacy-build",
        "url": "job/folder/job/legacy-build/",
        "build": {"number": 7, "phase": "COMPLETED", "status": "SUCCESS", "url": "x"},
    }
    env = {"OPSLOOP_JENKINS_WEBHOOK_TOKEN": HOOK_TOKEN}
    async with jenkins_bot(redis_url, **env) as (bot, _), aiohttp.ClientSession() as http:
        url = bot.base_url + "/hooks/jenkins"
        async with http.post(url + "?token=wrong", json=good) as r:
            assert r.status == 401
        async with http.post(url, json=good) as r:
            assert r.status == 401
        cases = {
            b"{broken": "not JSON",
            b"[]": "body: must be a JSON object",
            json.dumps({**good, "build": {"number": "7", "phase": "STARTED"}}).encode(): (
                "build.number"
            ),
            json.dumps({**good, "build": {"number": 7, "phase": "DONE"}}).encode(): "build.phase",
            json.dumps({**good, "url": "somewhere/else"}).encode(): "url:",
        }
        for body, problem in cases.items():
            async with http.post(f"{url}?token={HOOK_TOKEN}", data=body) as r:
                assert r.status == 400 and problem in await r.text(), (body, await r.text())
        async with http.post(f"{url}?token={HOOK_TOKEN}", json=good) as r:
            assert r.status == 202 and (await r.json())["status"] == "accepted"
        async with http.post(f"{url}?token={HOOK_TOKEN}", json=good) as r:
            assert r.status == 202 and (await r.json())["status"] == "duplicate"
    async with (
        running_bot(redis_url) as bot,
        aiohttp.ClientSession() as http,
        http.post(bot.base_url + "/hooks/jenkins?token=x", json=good) as r,
    ):
        assert r.status == 404  # no token configured


def test_a_job_url_names_the_job_in_its_folders() -> None:
    assert job_name("job/folder/job/legacy-build/") == "folder/legacy-build"
    assert job_name("https://ci.example.com/job/a%20b/") == "a b"
    for bad in ("", "job/", "folder/legacy-build", "job/a/b/c"):
        with pytest.raises(BadCall):
            job_name(bad)


async def test_a_jenkins_project_without_jenkins_configured_says_what_to_set(
    redis_url: str,
) -> None:
    async with running_gitlab() as gitlab:
        gitlab.pipeline_step_seconds = 0.1
        async with running_bot(redis_url, config=config(), **gitlab_env(gitlab)) as bot:
            await bot.driver.command("/build", "legacy develop", user="U0ALICE", channel=LEGACY)
            texts = await eventually(lambda: ephemerals(bot), within=20, what="the refusal")
            assert "Jenkins is not configured" in texts[-1]
            assert "OPSLOOP_JENKINS_URL" in texts[-1]
            assert gitlab.pipelines("acme/web") == []
            # GitLab's project is not held up by it.
            await bot.driver.command("/build", "web", user="U0ALICE", channel="C0GENERAL")
            await ended(bot, "*passed*", channel="C0GENERAL")
