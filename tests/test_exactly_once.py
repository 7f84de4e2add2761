"""A request acts once, however often its job runs: signed Slack requests in, the real clients
against the GitLab and Slack emulators, a worker stopped in the middle of a call and another
one running the job again.

A worker stopped mid-job has its job cancelled and queued again (as arq does), which from the
job's side is the same as a worker killed at that line and another running the job after the
in-progress mark lapsed; tests/test_exactly_once_processes.py kills real processes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio

from bot.alerting.service import AlertService
from bot.config_file import OpsConfig, Project, Roles
from bot.sandbox.emulators.gitlab import GitLabEmulator
from bot.slack_once import post_once
from bot.store.keys import alert_lock_key, effect_key
from tests.alert_payloads import alert, notification
from tests.harness import (
    BotUnderTest,
    gitlab_env,
    running_bot,
    running_emulator,
    running_gitlab,
)
from tests.test_alerts_webhook import alert_bot, one_parent, parents, post_hook
from tests.waiting import eventually

GENERAL = "C0GENERAL"
CONFIG = OpsConfig(
    roles=Roles(deployers=["U0ALICE"], approvers=["U0BOB"]),
    projects={"web": Project(gitlab="acme/web", channel=GENERAL)},
)


def task_messages(bot: BotUnderTest) -> list[Any]:
    return [m for m in bot.emulator.messages(GENERAL) if "Assign to me" in json.dumps(m.blocks)]


def build_messages(bot: BotUnderTest) -> list[Any]:
    return [m for m in bot.emulator.messages(GENERAL) if "Pipeline" in m.text]


def ephemerals(bot: BotUnderTest, user: str) -> list[str]:
    return [e.text for e in bot.emulator.ephemerals(user=user)]


async def audit_actions(bot: BotUnderTest, action: str) -> list[Any]:
    return [e for e in await bot.deps.store.audit_recent(100) if e.action == action]


@asynccontextmanager
async def bot_on(
    redis_url: str, slack: Any, gitlab: GitLabEmulator, **overrides: Any
) -> AsyncIterator[BotUnderTest]:
    async with running_bot(
        redis_url, emulator=slack, config=CONFIG, **gitlab_env(gitlab), **overrides
    ) as bot:
        yield bot


async def test_a_task_whose_worker_stopped_after_gitlab_filed_it_is_filed_and_posted_once(
    redis_url: str,
) -> None:
    async with running_emulator() as slack, running_gitlab() as gitlab:
        # GitLab files the issue at once; its answer is held, so the worker stops first.
        gitlab.hold("*/issues", 60, method="POST", after_handling=True)
        async with bot_on(redis_url, slack, gitlab) as first:
            resp = await first.driver.command(
                "/task", "Fix the login redirect", user="U0ALICE", channel=GENERAL
            )
            assert resp.status == 200 and resp.body == ""
            await eventually(lambda: gitlab.issues("acme/web"), what="the issue filed")
        gitlab.release_holds()
        async with bot_on(redis_url, slack, gitlab) as second:
            [message] = await eventually(lambda: task_messages(second), what="the task message")
            await asyncio.sleep(1.0)  # room for a second message or issue, were there one
            assert len(task_messages(second)) == 1
            [issue] = gitlab.issues("acme/web")
            assert issue["title"] == "Fix the login redirect"
            assert issue["web_url"] in json.dumps(message.blocks)
            assert len(gitlab.requests_to("*/issues", "POST")) == 1
            [entry] = await audit_actions(second, "task.created")
            assert entry.subject == "acme/web#1"


async def test_a_build_whose_worker_stopped_after_gitlab_started_it_is_started_once(
    redis_url: str,
) -> None:
    async with running_emulator() as slack, running_gitlab() as gitlab:
        gitlab.pipeline_step_seconds = None
        gitlab.hold("*/pipeline", 60, method="POST", after_handling=True)
        async with bot_on(redis_url, slack, gitlab) as first:
            await first.driver.command("/build", "web develop A=1", user="U0CAROL", channel=GENERAL)
            await eventually(lambda: gitlab.pipelines("acme/web"), what="the pipeline made")
        gitlab.release_holds()
        async with bot_on(redis_url, slack, gitlab) as second:
            await eventually(lambda: build_messages(second), what="the build message")
            await asyncio.sleep(1.0)
            assert len(build_messages(second)) == 1
            assert len(gitlab.pipelines("acme/web")) == 1
            assert len(gitlab.requests_to("*/pipeline", "POST")) == 1
            await eventually(lambda: audit_actions(second, "build.triggered"), what="the audit")
            assert len(await audit_actions(second, "build.triggered")) == 1


async def test_two_people_asking_for_the_same_title_get_two_issues(redis_url: str) -> None:
    async with (
        running_emulator() as slack,
        running_gitlab() as gitlab,
        bot_on(redis_url, slack, gitlab) as bot,
    ):
        await bot.driver.command("/task", "Fix login", user="U0ALICE", channel=GENERAL)
        await eventually(lambda: task_messages(bot), what="Alice's task")
        gitlab.fail(500, times=1, method="POST", path="*/issues")
        await bot.driver.command("/task", "Fix login", user="U0CAROL", channel=GENERAL)
        await eventually(lambda: task_messages(bot)[1:], what="Carol's task")
        assert [i["iid"] for i in gitlab.issues("acme/web")] == [1, 2]
        alice, carol = sorted(gitlab.issues("acme/web"), key=lambda i: i["iid"])
        newest = task_messages(bot)[-1]
        assert carol["web_url"] in json.dumps(newest.blocks)
        assert alice["web_url"] not in json.dumps(newest.blocks)


async def test_a_message_posted_before_a_crash_is_found_not_posted_again(redis_url: str) -> None:
    async with running_emulator() as slack, running_bot(redis_url, emulator=slack) as bot:
        settle = 60.0
        posted = await post_once(bot.deps.slack, "req-1", GENERAL, "Hello", settle_after=settle)
        # A crash after Slack posted it and before the effect was recorded: the intent stays.
        client = redis.asyncio.Redis.from_url(redis_url)
        await client.hdel(effect_key("req-1:message"), "effect")
        await client.aclose()
        again = await post_once(bot.deps.slack, "req-1", GENERAL, "Hello", settle_after=settle)
        assert again == posted
        assert [m.text for m in slack.messages(GENERAL)] == ["Hello"]
        # Another request with the same words is another message.
        other = await post_once(bot.deps.slack, "req-2", GENERAL, "Hello", settle_after=settle)
        assert other.ts != posted.ts and len(slack.messages(GENERAL)) == 2
        reads = [c for c in slack.calls if c.method == "conversations.history"]
        assert len(reads) == 1 and reads[0].args["include_all_metadata"] in (True, "true", "1")


class LosingProxy:
    """A TCP proxy to Redis that, while `lose` is set, forwards what the bot sends but closes
    the bot's connection instead of passing Redis's answer back: Redis has done the work, the
    bot never hears of it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.lose = False
        self.lost = 0
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        sock: socket.socket = self.server.sockets[0]
        self.port = int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        doomed = asyncio.Event()  # this connection sent the job: its answer is to be lost

        async def up() -> None:
            while data := await reader.read(65536):
                if self.lose and b"EVALSHA" in data and b"arq:job:" in data:
                    self.lose = False
                    doomed.set()
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def down() -> None:
            while data := await up_reader.read(65536):
                if doomed.is_set():
                    self.lost += 1
                    writer.close()
                    up_writer.close()
                    return
                writer.write(data)
                await writer.drain()
            writer.close()

        await asyncio.gather(up(), down(), return_exceptions=True)


async def test_an_ack_whose_redis_answer_was_lost_asks_again_and_acts_once(
    redis_url: str,
) -> None:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    proxy = LosingProxy(port)
    await proxy.start()
    try:
        async with running_bot(f"redis://127.0.0.1:{proxy.port}/0") as bot:
            await bot.driver.command("/ops", "help", user="U0ALICE", channel=GENERAL)
            await eventually(lambda: ephemerals(bot, "U0ALICE"), what="the first answer")
            proxy.lose = True  # Redis stores the next job; its answer never comes back
            resp = await bot.driver.command("/ops", "help", user="U0BOB", channel=GENERAL)
            assert proxy.lost == 1
            # Asked again, Redis says it has the job: an empty ack, and the work done once.
            assert resp.status == 200 and resp.body == "", resp.body
            await eventually(lambda: ephemerals(bot, "U0BOB"), what="Bob's answer")
            await asyncio.sleep(0.5)
            assert len(ephemerals(bot, "U0BOB")) == 1
    finally:
        await proxy.stop()


async def test_a_create_gitlab_never_answers_is_told_as_unknown_then_found_and_posted(
    redis_url: str,
) -> None:
    async with running_emulator() as slack, running_gitlab() as gitlab:
        # GitLab works on the POST longer than opsloop may wait, and files it in the end.
        hold = gitlab.hold("*/issues", 5, method="POST")
        async with bot_on(
            redis_url,
            slack,
            gitlab,
            OPSLOOP_GITLAB_CALL_SECONDS="2",
            OPSLOOP_SETTLE_SECONDS="7",
        ) as bot:
            await bot.driver.command("/task", "Slow one", user="U0ALICE", channel=GENERAL)
            [told] = await eventually(lambda: ephemerals(bot, "U0ALICE"), what="the first word")
            assert "cannot tell yet whether the issue was filed" in told
            assert "`/task list`" in told
            assert task_messages(bot) == []
            hold.seconds = 0
            await eventually(lambda: task_messages(bot), within=20, what="the task, found")
            assert len(gitlab.issues("acme/web")) == 1
            assert len(gitlab.requests_to("*/issues", "POST")) == 1
            assert len(ephemerals(bot, "U0ALICE")) == 1  # told once, not at every look


async def test_a_resolving_notification_run_again_does_not_open_a_new_incident(
    redis_url: str,
) -> None:
    async with alert_bot(redis_url) as bot:
        firing = notification([alert("web-1")])
        assert (await post_hook(bot, firing))[0] == 202
        parent = await one_parent(bot, "C0INCIDENT")
        # Slack refuses replies in the channel for a while: the resolving notification's job
        # is stored, then deferred (it waits for Slack), and runs again afterwards.
        bot.emulator.limits.open_window("chat.postMessage", 3.0, channel="C0INCIDENT")
        resolved = notification([alert("web-1", resolved=True)])
        assert (await post_hook(bot, resolved))[0] == 202
        await eventually(
            lambda: [r for r in parent.replies if "resolved" in r.text.lower()],
            within=15,
            what="the resolution in the thread",
        )
        await asyncio.sleep(1.0)
        assert len(parents(bot, "C0INCIDENT")) == 1
        assert await bot.deps.store.alerts.load("AL-2") is None
        group = await bot.deps.store.alerts.load("AL-1")
        assert group is not None and not group.is_open


async def test_a_job_held_up_past_its_time_limit_runs_again_instead_of_being_lost(
    redis_url: str,
) -> None:
    firing = notification([alert("web-1")])
    # A worker that died holding the group's lock: it lapses after a few seconds.
    client = redis.asyncio.Redis.from_url(redis_url)
    lock = alert_lock_key(hashlib.sha256(firing["groupKey"].encode()).hexdigest()[:24])
    async with alert_bot(redis_url, OPSLOOP_JOB_TIMEOUT="2") as bot:
        assert await client.set(lock, "a-dead-worker", px=4500)
        assert (await post_hook(bot, firing))[0] == 202
        # The job waits for the lock past its 2 s, stops, and runs again once the lock lapsed.
        await one_parent(bot, "C0INCIDENT", within=20)
    await client.aclose()


async def test_a_notification_whose_job_ran_late_does_not_undo_a_newer_one(
    redis_url: str,
) -> None:
    """Two notifications of one group, the newer (resolved) applied first because the older
    one's job was deferred: the older one is left out instead of reopening the group."""
    async with alert_bot(redis_url) as bot:
        first = notification([alert("web-1")])
        assert (await post_hook(bot, first))[0] == 202
        parent = await one_parent(bot, "C0INCIDENT")
        service = AlertService(bot.deps)
        now = time.time()
        growing = notification([alert("web-1"), alert("web-2")])
        resolved = notification([alert("web-1", resolved=True), alert("web-2", resolved=True)])
        await service.notify(resolved, now, key="am:newer")
        await service.notify(growing, now - 1.0, key="am:older")
        await asyncio.sleep(1.0)
        assert len(parents(bot, "C0INCIDENT")) == 1
        assert await bot.deps.store.alerts.load("AL-2") is None
        group = await bot.deps.store.alerts.load("AL-1")
        assert group is not None and not group.is_open
        assert "RESOLVED" in parent.text.upper()
