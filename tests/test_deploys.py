"""/deploy end to end against a real dockerd: signed commands and clicks in through the Slack
emulator, containers of local/app:1 and local/app:2 on the engine, the rules enforced."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bot.config_file import AlertRoute, Alerts, OpsConfig, Roles
from bot.config_load import parse_config
from integrations.docker.config import DockerService
from integrations.docker.shapes import LABEL_SERVICE, LABEL_VERSION
from tests.alert_payloads import TOKEN, alert, notification
from tests.dockerd_server import DockerEngine
from tests.harness import BotUnderTest, running_bot
from tests.waiting import eventually

REPO = Path(__file__).resolve().parent.parent
CHANNEL = "C0DEPLOYS"
SERVICE = "web"


def config(**overrides: Any) -> OpsConfig:
    web: dict[str, Any] = {
        "deployer": "docker",
        "image": "local/app",
        "replicas": 4,
        "steps": [25, 50, 100],
        "approvals": 1,
        "channel": CHANNEL,
        "alert_labels": {"service": "web"},
        "container": {"network_mode": "host", "stop_signal": "SIGTERM"},
    }
    web.update(overrides)
    return OpsConfig(
        # Alice deploys and is also an approver, so that self-approval can be tried; Carol
        # approves through the S0ONCALL user group; Dave is neither.
        roles=Roles(deployers=["U0ALICE"], approvers=["U0ALICE", "U0BOB", "S0ONCALL"]),
        services={SERVICE: DockerService.model_validate(web)},
        alerts=Alerts(routes=[AlertRoute(channel="C0ALERTS")]),
    )


@pytest.fixture
def engine(dockerd: DockerEngine) -> Iterator[DockerEngine]:
    def clear() -> None:
        for c in dockerd.client.containers.list(
            all=True, filters={"label": f"{LABEL_SERVICE}={SERVICE}"}
        ):
            c.remove(force=True)

    clear()
    yield dockerd
    clear()


def running(engine: DockerEngine) -> dict[str, int]:
    """The engine's own view: running containers of the service per version.

    One low-level list call: the SDK's containers.list() inspects each container afterwards,
    and fails when a step removes one in between.
    """
    counts: dict[str, int] = {}
    for c in engine.client.api.containers(filters={"label": f"{LABEL_SERVICE}={SERVICE}"}):
        version = c["Labels"][LABEL_VERSION]
        counts[version] = counts.get(version, 0) + 1
    return counts


def all_containers(engine: DockerEngine) -> int:
    return len(
        engine.client.api.containers(all=True, filters={"label": f"{LABEL_SERVICE}={SERVICE}"})
    )


@asynccontextmanager
async def deploy_bot(
    redis_url: str, engine: DockerEngine, cfg: OpsConfig | None = None, **env: Any
) -> AsyncIterator[BotUnderTest]:
    async with running_bot(
        redis_url,
        config=cfg or config(),
        OPSLOOP_DOCKER_HOST=engine.url,
        OPSLOOP_DEPLOY_STEP_TIMEOUT="60",
        **env,
    ) as bot:
        yield bot


def deploy_messages(bot: BotUnderTest, version: str | None = None) -> list[Any]:
    return [
        m
        for m in bot.emulator.messages(CHANNEL)
        if m.text.startswith("Deploy ") and (version is None or f" {version} (" in m.text)
    ]


def shown(message: Any) -> str:
    return message.text + json.dumps(message.blocks)


def live(bot: BotUnderTest, version: str) -> Any:
    [message] = deploy_messages(bot, version)
    return message


def thread(bot: BotUnderTest, version: str) -> list[str]:
    return [r.text for r in bot.emulator.thread(CHANNEL, live(bot, version).ts)]


def ephemerals(bot: BotUnderTest, user: str) -> list[str]:
    return [e.text for e in bot.emulator.ephemerals(user=user)]


async def says(bot: BotUnderTest, version: str, words: str, within: float = 30) -> Any:
    await eventually(
        lambda: deploy_messages(bot, version) and words in shown(live(bot, version)),
        within=within,
        what=f"the deploy message of {version} to say {words!r}",
    )
    return live(bot, version)


async def told(bot: BotUnderTest, user: str, words: str, within: float = 15) -> str:
    found = await eventually(
        lambda: [t for t in ephemerals(bot, user) if words in t],
        within=within,
        what=f"{user} to be told {words!r}",
    )
    return str(found[-1])


async def actions(bot: BotUnderTest) -> list[str]:
    return [e.action for e in reversed(await bot.deps.store.audit_recent(200))]


async def first_deploy(bot: BotUnderTest, engine: DockerEngine, version: str = "1") -> None:
    resp = await bot.driver.command("/deploy", f"{SERVICE} {version}", user="U0ALICE")
    assert resp.status == 200
    await says(bot, version, "complete")
    assert running(engine) == {version: 4}


async def canary(bot: BotUnderTest, engine: DockerEngine, version: str = "2") -> Any:
    await bot.driver.command("/deploy", f"{SERVICE} {version}", user="U0ALICE")
    message = await says(bot, version, "waiting for approval to go to 50%")
    assert running(engine) == {version: 1, "1": 3}
    return message


# -- the whole loop -----------------------------------------------------------------------------


async def test_a_rollout_goes_from_first_deploy_through_canary_steps_to_complete(
    redis_url: str, engine: DockerEngine
) -> None:
    async with deploy_bot(redis_url, engine) as bot:
        await first_deploy(bot, engine)
        assert "Approve" not in shown(live(bot, "1")), "a first deploy needs no approval"
        assert any("full size" in t for t in thread(bot, "1"))

        message = await canary(bot, engine)
        text = shown(message)
        assert "Approve" in text and "Reject" in text
        assert "25% (step 1 of 3)" in text and "50%" in text and "0 of 1" in text
        assert "<@U0ALICE>" in text and "opsloop-web-2-1" in text

        resp = await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        assert resp.status == 200 and resp.elapsed_ms < 3000
        await says(bot, "2", "waiting for approval to go to 100%")
        assert running(engine) == {"2": 2, "1": 2}

        await bot.driver.click("Approve", user="U0CAROL", channel=CHANNEL)  # via S0ONCALL
        final = await says(bot, "2", "complete")
        assert running(engine) == {"2": 4}
        assert all_containers(engine) == 4, "the old containers are gone"
        assert "Approve" not in shown(final) and "Reject" not in shown(final)
        assert len(deploy_messages(bot, "2")) == 1, "one message, edited in place"
        assert len(final.edits) >= 3

        replies = thread(bot, "2")
        assert any("Approved by <@U0BOB>" in r for r in replies)
        assert any("Approved by <@U0CAROL>" in r for r in replies)
        assert any("Step 2 of 3" in r for r in replies)
        await eventually(lambda: any("Complete" in r for r in thread(bot, "2")), what="Complete")
        log = await actions(bot)
        assert log.count("deploy.requested") == 2
        assert log.count("deploy.approved") == 2
        # First deploy: one step; the rollout of 2: 25, 50 and 100.
        assert log.count("deploy.promoted") == 4
        assert log.count("deploy.completed") == 2


# -- the rules ----------------------------------------------------------------------------------


async def test_reject_rolls_the_canary_back_and_only_approvers_or_the_starter_may(
    redis_url: str, engine: DockerEngine
) -> None:
    async with deploy_bot(redis_url, engine) as bot:
        await first_deploy(bot, engine)
        await canary(bot, engine)
        await bot.driver.click("Reject", user="U0DAVE", channel=CHANNEL)
        await told(bot, "U0DAVE", "Only approvers of web, or the person who started")
        assert running(engine) == {"2": 1, "1": 3}

        await bot.driver.click("Reject", user="U0BOB", channel=CHANNEL)
        final = await says(bot, "2", "rolled back")
        assert running(engine) == {"1": 4}
        assert all_containers(engine) == 4
        assert "Approve" not in shown(final) and "Reject" not in shown(final)
        assert any("Rejected by <@U0BOB>" in r for r in thread(bot, "2"))
        assert any("Rolled back" in r for r in thread(bot, "2"))
        log = await actions(bot)
        assert "deploy.rejected" in log and "deploy.rolled_back" in log

        # The starter may reject their own rollout too.
        await bot.driver.command("/deploy", "web 2", user="U0ALICE")
        await eventually(lambda: len(deploy_messages(bot, "2")) == 2, what="a second rollout")
        await eventually(
            lambda: "Reject" in shown(deploy_messages(bot, "2")[-1]), what="the new Reject"
        )
        await bot.driver.click("Reject", user="U0ALICE", message=deploy_messages(bot, "2")[-1])
        await eventually(
            lambda: "rolled back" in shown(deploy_messages(bot, "2")[-1]),
            within=30,
            what="the starter's rejection",
        )
        assert running(engine) == {"1": 4}


async def test_self_approval_non_approvers_repeats_and_non_deployers_are_refused(
    redis_url: str, engine: DockerEngine
) -> None:
    async with deploy_bot(redis_url, engine, config(approvals=2)) as bot:
        await bot.driver.command("/deploy", "web 1", user="U0DAVE")
        await told(bot, "U0DAVE", "Only deployers")
        assert running(engine) == {}

        await first_deploy(bot, engine)
        await canary(bot, engine)
        await bot.driver.command("/deploy", "web 3", user="U0ALICE")
        await told(bot, "U0ALICE", "already deploying 2")

        await bot.driver.click("Approve", user="U0ALICE", channel=CHANNEL)
        await told(bot, "U0ALICE", "you may not approve it")
        await bot.driver.click("Approve", user="U0DAVE", channel=CHANNEL)
        await told(bot, "U0DAVE", "Only approvers of web may approve")

        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(bot, "2", "1 of 2")
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await told(bot, "U0BOB", "You already approved this step")
        await asyncio.sleep(0.5)
        assert running(engine) == {"2": 1, "1": 3}, "one approver twice is not two approvals"

        await bot.driver.command("/deploy", "promote web", user="U0DAVE")
        await told(bot, "U0DAVE", "Only deployers")
        await bot.driver.command("/deploy", "rollback web", user="U0DAVE")
        await told(bot, "U0DAVE", "Only deployers")

        await bot.driver.click("Approve", user="U0CAROL", channel=CHANNEL)
        await says(bot, "2", "waiting for approval to go to 100%")
        assert running(engine) == {"2": 2, "1": 2}
        approved = [
            e for e in await bot.deps.store.audit_recent(100) if e.action == "deploy.approved"
        ]
        assert sorted(e.who for e in approved) == ["U0BOB", "U0CAROL"]


async def test_an_expired_request_is_refused_and_held_until_asked_again(
    redis_url: str, engine: DockerEngine
) -> None:
    async with deploy_bot(redis_url, engine, config(approval_timeout="2s")) as bot:
        await first_deploy(bot, engine)
        await canary(bot, engine)
        message = await says(bot, "2", "expired", within=15)
        assert "Approve" not in shown(message), "an expired request offers no Approve"
        assert any("expired" in r for r in thread(bot, "2"))
        # A click that reaches the bot after expiry (an old copy of the message) is refused.
        await _click_stale_approve(bot, "U0BOB")
        await told(bot, "U0BOB", "expired")
        assert running(engine) == {"2": 1, "1": 3}, "the canary is held"

        await bot.driver.command("/deploy", "promote web", user="U0ALICE")
        await says(bot, "2", "Approve")
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(bot, "2", "go to 100%")
        assert running(engine) == {"2": 2, "1": 2}
        assert "deploy.expired" in await actions(bot)


async def _click_stale_approve(bot: BotUnderTest, user: str) -> None:
    """Click Approve on the message as it was before it expired (its first edit with one)."""
    message = live(bot, "2")
    for version in reversed(message.edits):
        if "deploy_approve" in json.dumps(version.blocks):
            stale = dataclasses.replace(message, blocks=version.blocks)
            await bot.driver.click("Approve", user=user, message=stale)
            return
    raise AssertionError("the message never had an Approve button")


async def test_approve_is_refused_while_a_matching_alert_fires_unacknowledged(
    redis_url: str, engine: DockerEngine
) -> None:
    async with deploy_bot(redis_url, engine, OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN=TOKEN) as bot:
        await first_deploy(bot, engine)
        await canary(bot, engine)
        body = notification([alert("web-1", name="HighErrorRate", extra={"service": "web"})])
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                bot.base_url + "/hooks/alertmanager",
                json=body,
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as resp,
        ):
            assert resp.status < 300
        await eventually(lambda: bot.emulator.messages("C0ALERTS"), what="the alert's thread")

        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        refusal = await told(bot, "U0BOB", "AL-1")
        assert "blocked" in refusal
        await asyncio.sleep(0.5)
        assert running(engine) == {"2": 1, "1": 3}

        await bot.driver.command("/ack", "AL-1 looking", user="U0CAROL")
        await eventually(_acked(bot, "AL-1"), within=10, what="AL-1 to be acknowledged")
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(bot, "2", "go to 100%")
        assert running(engine) == {"2": 2, "1": 2}


def _acked(bot: BotUnderTest, ref: str) -> Any:
    async def check() -> bool:
        group = await bot.deps.store.alerts.load(ref)
        return group is not None and group.acked_by is not None

    return check


async def test_two_approve_clicks_at_the_same_moment_promote_once(
    redis_url: str, engine: DockerEngine
) -> None:
    async with deploy_bot(redis_url, engine) as bot:
        await first_deploy(bot, engine)
        message = await canary(bot, engine)
        await asyncio.gather(
            bot.driver.click("Approve", user="U0BOB", message=message),
            bot.driver.click("Approve", user="U0CAROL", message=message),
        )
        await says(bot, "2", "waiting for approval to go to 100%")
        await asyncio.sleep(1)
        assert running(engine) == {"2": 2, "1": 2}, "promoted once: 50%, not 100%"
        log = await actions(bot)
        assert log.count("deploy.approved") == 1
        assert log.count("deploy.promoted") == 1 + 2  # first deploy, 25%, 50%
        refused = ephemerals(bot, "U0BOB") + ephemerals(bot, "U0CAROL")
        assert (
            len([t for t in refused if "already being promoted" in t or "earlier step" in t]) == 1
        )


# -- a crash in the middle of a step --------------------------------------------------------------

YAML = """
roles: {deployers: [U0ALICE], approvers: [U0BOB]}
services:
  web:
    deployer: docker
    image: local/app
    replicas: 4
    steps: [25, 50, 100]
    channel: C0DEPLOYS
    container: {network_mode: host}
"""


def start_worker(
    bot: BotUnderTest, engine: DockerEngine, config_file: Path, log: Path
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "SLACK_"))}
    env.update(
        SLACK_BOT_TOKEN=bot.emulator.bot_token,
        OPSLOOP_SLACK_API_URL=bot.emulator.api_url,
        OPSLOOP_REDIS_URL=bot.settings.redis_url or "",
        OPSLOOP_CONFIG_FILE=str(config_file),
        OPSLOOP_DOCKER_HOST=engine.url,
        OPSLOOP_DEPLOY_LEASE_SECONDS="2",
        PYTHONPATH=str(REPO),
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"], env=env, stdout=out, stderr=out, cwd=REPO
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.timeout(90)  # about 20 s: a worker process is killed and another takes over
async def test_a_worker_killed_mid_promotion_is_resumed_by_the_next_one(
    redis_url: str, engine: DockerEngine, tmp_path: Path
) -> None:
    config_file = tmp_path / "opsloop.yml"
    config_file.write_text(YAML, encoding="utf-8")
    cfg = parse_config(yaml.safe_load(YAML))
    async with running_bot(redis_url, config=cfg, worker=False) as bot:
        first = start_worker(bot, engine, config_file, tmp_path / "worker-a.log")
        try:
            await first_deploy(bot, engine)
            await canary(bot, engine)
            await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
            # local/app:2 takes a second or two to turn healthy: kill while the new container
            # of the 50% step exists but the step is not recorded as done.
            await eventually(
                lambda: running(engine).get("2", 0) == 2, within=20, what="the step under way"
            )
        finally:
            stop(first)
        rollout = await bot.deps.store.deploys.load(SERVICE)
        assert rollout is not None and rollout.state == "promoting", rollout

        second = start_worker(bot, engine, config_file, tmp_path / "worker-b.log")
        try:
            await says(bot, "2", "waiting for approval to go to 100%", within=60)
            assert running(engine) == {"2": 2, "1": 2}
            assert all_containers(engine) == 4, "nothing left over from the killed step"
            await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
            await says(bot, "2", "complete", within=60)
            assert running(engine) == {"2": 4}
            assert all_containers(engine) == 4
        finally:
            stop(second)
        promoted = [
            e.detail["percent"]
            for e in reversed(await bot.deps.store.audit_recent(100))
            if e.action == "deploy.promoted"
        ]
        assert promoted == [100, 25, 50, 100], "each step recorded once"
        steps = [r for r in thread(bot, "2") if r.startswith(":arrow_up:")]
        assert len(steps) == 2, steps


# -- failures -----------------------------------------------------------------------------------


async def test_a_canary_that_does_not_start_fails_clearly_and_the_old_version_keeps_serving(
    redis_url: str, engine: DockerEngine
) -> None:
    async with deploy_bot(redis_url, engine) as bot:
        await first_deploy(bot, engine)
        await bot.driver.command("/deploy", "web bad", user="U0ALICE")
        message = await says(bot, "bad", "failed")
        text = shown(message)
        assert "did not start" in text and "app failed: missing config" in text, text
        assert running(engine) == {"1": 4} and all_containers(engine) == 4
        assert "Approve" not in text and "Reject" in text
        assert "deploy.failed" in await actions(bot)

        await bot.driver.command("/deploy", "web 3", user="U0ALICE")
        await told(bot, "U0ALICE", "already deploying bad")
        await bot.driver.command("/deploy", "rollback web", user="U0ALICE")
        await says(bot, "bad", "rolled back")
        assert running(engine) == {"1": 4}


async def test_docker_unreachable_is_said_plainly_and_nothing_is_started(redis_url: str) -> None:
    async with running_bot(
        redis_url, config=config(), OPSLOOP_DOCKER_HOST="unix:///tmp/opsloop-no-docker.sock"
    ) as bot:
        resp = await bot.driver.command("/deploy", "web 1", user="U0ALICE")
        assert resp.status == 200
        answer = await told(bot, "U0ALICE", "unreachable")
        assert "Docker" in answer and "Traceback" not in answer
        assert await bot.deps.store.deploys.load(SERVICE) is None
        assert not deploy_messages(bot)


async def test_bad_input_gets_the_usage(redis_url: str) -> None:
    async with running_bot(redis_url, config=config()) as bot:
        for text, words in [
            ("", "Which service and version"),
            ("web", "takes a service and a version"),
            ("web 1 2", "takes a service and a version"),
            ("web -1", "is not a version"),
            ("promote", "takes one service"),
        ]:
            resp = await bot.driver.command("/deploy", text, user="U0ALICE")
            assert resp.status == 200
            assert words in resp.body and "/deploy &lt;service&gt; &lt;version&gt;" in resp.body, (
                resp.body
            )
        await bot.driver.command("/deploy", "nosuch 1", user="U0ALICE")
        await told(bot, "U0ALICE", "`nosuch` is not a service (known: web)")


async def test_a_busy_channel_delays_the_replies_but_not_the_step(
    redis_url: str, engine: DockerEngine
) -> None:
    async with deploy_bot(redis_url, engine) as bot:
        await first_deploy(bot, engine)
        await canary(bot, engine)
        # As if Slack had answered 429 with Retry-After 5: no message to the channel for 5 s,
        # longer than a job waits for a slot, so the approval job is deferred and runs again.
        await bot.deps.store.slack.pause("chat.postMessage", 5.0, channel=CHANNEL, burst=3)
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await eventually(
            lambda: running(engine) == {"2": 2, "1": 2}, within=15, what="the 50% step"
        )
        await says(bot, "2", "waiting for approval to go to 100%")
        await eventually(
            lambda: any("Approved by <@U0BOB>" in r for r in thread(bot, "2")),
            within=20,
            what="the approval's reply once the channel has room",
        )
        assert not ephemerals(bot, "U0BOB"), "the approver's own click was not refused"
        assert (await actions(bot)).count("deploy.approved") == 1


async def test_opsloop_check_pings_docker_when_a_service_uses_it(
    redis_url: str, engine: DockerEngine, tmp_path: Path
) -> None:
    config_file = tmp_path / "opsloop.yml"
    config_file.write_text(YAML, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "SLACK_"))}
    env.update(
        PYTHONPATH=str(REPO),
        OPSLOOP_REDIS_URL=redis_url,
        OPSLOOP_CONFIG_FILE=str(config_file),
        OPSLOOP_DOCKER_HOST=engine.url,
    )

    def check() -> tuple[int, str]:
        done = subprocess.run(
            [sys.executable, "-m", "bot", "check"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.returncode, done.stdout

    _, out = await asyncio.to_thread(check)
    [line] = [x for x in out.splitlines() if "docker" in x]
    assert line.startswith("ok") and "Docker Engine" in line, out
    env["OPSLOOP_DOCKER_HOST"] = "unix:///tmp/opsloop-no-docker.sock"
    code, out = await asyncio.to_thread(check)
    [line] = [x for x in out.splitlines() if "docker" in x]
    assert code != 0 and not line.startswith("ok") and "unreachable" in line, out
