"""Exactly once, with real processes: a request files one issue or starts one pipeline although
the worker running it is killed, or Redis stops, while GitLab is making it, and although GitLab
takes longer than the adapter's per-attempt time-out.

Everything is a real process as in production: redis-server (append-only, so a stop keeps its
data), `opsloop serve --no-worker` and `opsloop worker`, configured through the environment and a
YAML file; Slack and GitLab are the in-process emulators. Requests go in signed through the
serve process's `/slack/events`; what counts is what a person sees: issues and pipelines in
GitLab, messages and answers in Slack.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio

from bot.sandbox.emulators.gitlab import GitLabEmulator
from bot.sandbox.emulators.slack import Message, SlackDriver, SlackEmulator
from bot.store.keys import QUEUE
from tests.harness import gitlab_env, running_emulator, running_gitlab
from tests.processes import (
    DurableRedis,
    OpsloopProcess,
    Processes,
    opsloop_env,
    running_processes,
)
from tests.waiting import eventually

# 15-35 s each on a quiet machine: processes start, are killed and start again.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

CHANNEL = "C0WEB"
PERSON = "U0ALICE"
# arq runs a killed worker's job again once its in-progress mark lapses: job timeout + 10 s.
JOB_TIMEOUT = 5
RERUN_WITHIN = JOB_TIMEOUT + 10 + 20
# Longer than one attempt of a GitLab call may take (integrations/gitlab/client.py: at most 10 s).
SLOWER_THAN_AN_ATTEMPT = 12.0
CONFIG = f"""\
roles: {{deployers: [{PERSON}]}}
projects:
  web: {{gitlab: acme/web, channel: {CHANNEL}, default_ref: main}}
"""
ISSUE_CREATE = "*/projects/*/issues"
PIPELINE_CREATE = "*/projects/*/pipeline"


@dataclass
class Stack:
    procs: Processes
    redis: DurableRedis
    env: dict[str, str]
    serve: OpsloopProcess
    gitlab: GitLabEmulator
    slack: SlackEmulator
    driver: SlackDriver

    def worker(self, name: str) -> OpsloopProcess:
        return self.procs.worker(self.env, name)


@asynccontextmanager
async def stack(tmp_path: Path, job_timeout: float = JOB_TIMEOUT) -> AsyncIterator[Stack]:
    # The emulators outlive the processes: nothing of opsloop talks to a vanished peer.
    async with (
        running_gitlab() as gitlab,
        running_emulator() as slack,
        running_processes(tmp_path) as procs,
    ):
        redis_server = await procs.redis()
        config = tmp_path / "opsloop.yml"
        config.write_text(CONFIG)
        env = opsloop_env(
            SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_SIGNING_SECRET=slack.signing_secret,
            OPSLOOP_SLACK_API_URL=slack.api_url,
            OPSLOOP_REDIS_URL=redis_server.url,
            OPSLOOP_CONFIG_FILE=str(config),
            OPSLOOP_JOB_TIMEOUT=str(job_timeout),
            OPSLOOP_LOG_LEVEL="WARNING",
            **gitlab_env(gitlab),
        )
        serve = await procs.serve(env)
        slack.bot_events_url = f"{serve.base_url}/slack/events"
        async with SlackDriver(slack) as driver:
            try:
                yield Stack(procs, redis_server, env, serve, gitlab, slack, driver)
            except BaseException:
                print(procs.logs())
                raise


# -- what a person sees ---------------------------------------------------------------------


def issues_titled(gitlab: GitLabEmulator, title: str) -> list[object]:
    return [i for i in gitlab.issues("acme/web") if i["title"] == title]


def pipelines_with(gitlab: GitLabEmulator, key: str, value: str) -> list[int]:
    return [
        p.id
        for p in gitlab.ci.pipelines.values()
        if any(k == key and v == value for k, v, _ in p.variables)
    ]


def task_messages(slack: SlackEmulator, title: str) -> list[Message]:
    return [
        m
        for m in slack.messages(CHANNEL)
        if title in m.text and "Assign to me" in json.dumps(m.blocks)
    ]


def build_messages(slack: SlackEmulator) -> list[Message]:
    return [m for m in slack.messages(CHANNEL) if "Pipeline" in m.text]


def answers(slack: SlackEmulator) -> list[str]:
    return [e.text for e in slack.ephemerals(user=PERSON)]


def creates_in_flight(gitlab: GitLabEmulator, path: str) -> int:
    return sum(1 for r in gitlab.requests_to(path, "POST") if r.status is None)


async def settle(s: Stack, shown: Callable[[], object], within: float) -> None:
    """Until the person sees the outcome, the queue is empty and GitLab is not still making
    something; then a moment more, for a late duplicate to show."""
    client = redis.asyncio.Redis.from_url(s.redis.url)
    try:

        async def done() -> bool:
            in_flight = creates_in_flight(s.gitlab, ISSUE_CREATE) + creates_in_flight(
                s.gitlab, PIPELINE_CREATE
            )
            return bool(shown()) and in_flight == 0 and await client.zcard(QUEUE) == 0

        await eventually(done, within=within, what="the request to be done with")
    finally:
        await client.aclose()
    await asyncio.sleep(2.0)


async def typed(s: Stack, command: str, text: str) -> None:
    resp = await s.driver.command(command, text, user=PERSON, channel=CHANNEL)
    assert resp.ok and not resp.body.strip(), f"not acknowledged: {resp.status} {resp.body}"


async def create_arrives(s: Stack, path: str) -> None:
    await eventually(
        lambda: s.gitlab.requests_to(path, "POST"), within=30, what=f"a worker's POST {path}"
    )


# -- the tests ------------------------------------------------------------------------------


async def test_worker_killed_while_gitlab_files_the_issue_files_it_once(tmp_path: Path) -> None:
    title = "Worker killed mid-create"
    async with stack(tmp_path) as s:
        # GitLab files the issue at once; its answer waits, and never reaches the first worker.
        hold = s.gitlab.hold(ISSUE_CREATE, 120, method="POST", after_handling=True)
        first = s.worker("worker-1")
        await typed(s, "/task", title)
        await create_arrives(s, ISSUE_CREATE)
        first.kill()
        hold.seconds = 0
        s.worker("worker-2")
        await settle(s, lambda: task_messages(s.slack, title), RERUN_WITHIN)

        assert len(issues_titled(s.gitlab, title)) == 1, "one /task, one issue"
        assert len(task_messages(s.slack, title)) == 1
        assert answers(s.slack) == []


async def test_worker_killed_while_gitlab_starts_the_pipeline_starts_it_once(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path) as s:
        hold = s.gitlab.hold(PIPELINE_CREATE, 120, method="POST", after_handling=True)
        first = s.worker("worker-1")
        await typed(s, "/build", "web main SOAK=1")
        await create_arrives(s, PIPELINE_CREATE)
        first.kill()
        hold.seconds = 0
        s.worker("worker-2")
        await settle(s, lambda: build_messages(s.slack), RERUN_WITHIN)

        assert len(pipelines_with(s.gitlab, "SOAK", "1")) == 1, "one /build, one pipeline"
        assert len(build_messages(s.slack)) == 1
        assert answers(s.slack) == []


async def test_redis_stopped_while_gitlab_files_the_issue_files_it_once(tmp_path: Path) -> None:
    title = "Redis away mid-create"
    async with stack(tmp_path) as s:
        hold = s.gitlab.hold(ISSUE_CREATE, 120, method="POST", after_handling=True)
        s.worker("worker-1")
        await typed(s, "/task", title)
        await create_arrives(s, ISSUE_CREATE)
        await asyncio.to_thread(s.redis.stop)
        hold.seconds = 0  # the worker hears of the issue while it cannot write it down
        await asyncio.sleep(3.0)
        await s.redis.start()
        await settle(s, lambda: task_messages(s.slack, title), RERUN_WITHIN)

        assert len(issues_titled(s.gitlab, title)) == 1, "one /task, one issue"
        assert len(task_messages(s.slack, title)) == 1
        told = " ".join(answers(s.slack))
        assert "Nothing was" not in told, f"told nothing was done after the issue was filed: {told}"


@pytest.mark.parametrize("kind", ["task", "build"])
async def test_gitlab_slower_than_an_attempt_makes_one(kind: str, tmp_path: Path) -> None:
    # The job may take as long as every attempt of the call together, and then some.
    async with stack(tmp_path, job_timeout=60) as s:
        path = ISSUE_CREATE if kind == "task" else PIPELINE_CREATE
        # Held before GitLab starts on it: a look while it is held finds nothing yet.
        s.gitlab.hold(path, SLOWER_THAN_AN_ATTEMPT, method="POST")
        s.worker("worker-1")
        if kind == "task":
            title = "GitLab slower than an attempt"
            await typed(s, "/task", title)
            await settle(s, lambda: task_messages(s.slack, title) or answers(s.slack), 60)
            made = len(issues_titled(s.gitlab, title))
        else:
            await typed(s, "/build", "web main SOAK=2")
            await settle(s, lambda: build_messages(s.slack) or answers(s.slack), 60)
            made = len(pipelines_with(s.gitlab, "SOAK", "2"))

        posts = len(s.gitlab.requests_to(path, "POST"))
        assert made == 1, f"one /{kind} made {made} after {posts} POSTs"
