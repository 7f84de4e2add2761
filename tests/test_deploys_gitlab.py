"""/deploy on a GitLab-deployed service end to end: a signed command, a pipeline with VERSION in
the GitLab emulator, each step's manual job played after approval, Reject playing rollback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bot.config_file import OpsConfig, Roles
from bot.sandbox.emulators.gitlab import JobSpec
from integrations.gitlab.config import GitLabService
from tests.harness import BotUnderTest, gitlab_env, running_bot, running_gitlab
from tests.waiting import eventually

CHANNEL = "C0DEPLOYS"
JOBS = [
    JobSpec("build", "build"),
    JobSpec("canary", "canary", when="manual", allow_failure=False),
    JobSpec("rollback", "canary", when="manual"),
    JobSpec("production", "production", when="manual", allow_failure=False),
]


def config(channel: str = CHANNEL) -> OpsConfig:
    api = GitLabService.model_validate(
        {
            "deployer": "gitlab",
            "project": "acme/api",
            "ref": "main",
            "steps": [{"percent": 10, "job": "canary"}, {"percent": 100, "job": "production"}],
            "rollback_job": "rollback",
            "channel": channel,
        }
    )
    return OpsConfig(roles=Roles(deployers=["U0ALICE"], approvers=["U0BOB"]), services={"api": api})


@asynccontextmanager
async def gitlab_deploy_bot(redis_url: str) -> AsyncIterator[tuple[BotUnderTest, Any]]:
    async with running_gitlab() as gitlab:
        gitlab.pipeline_step_seconds = 0.05
        gitlab.set_pipeline_jobs("acme/api", JOBS)
        async with running_bot(
            redis_url, config=config(), OPSLOOP_DEPLOY_POLL_SECONDS="0.1", **gitlab_env(gitlab)
        ) as bot:
            yield bot, gitlab


def message(bot: BotUnderTest) -> Any:
    found = [m for m in bot.emulator.messages(CHANNEL) if m.text.startswith("Deploy api")]
    return found[-1] if found else None


def shown(bot: BotUnderTest) -> str:
    m = message(bot)
    return m.text + json.dumps(m.blocks) if m is not None else ""


def jobs(gitlab: Any) -> dict[str, str]:
    [pipeline] = gitlab.ci.pipelines.values()
    return {j.spec.name: j.status for j in pipeline.jobs if not j.retried}


async def test_each_approved_step_plays_its_manual_job_until_complete(redis_url: str) -> None:
    async with gitlab_deploy_bot(redis_url) as (bot, gitlab):
        await bot.driver.command("/deploy", "api 1.4.2", user="U0ALICE")
        await eventually(
            lambda: "waiting for approval to go to 100%" in shown(bot),
            within=20,
            what="the canary job to run",
        )
        [pipeline] = gitlab.ci.pipelines.values()
        assert pipeline.variables[0] == ("VERSION", "1.4.2", "env_var")
        assert jobs(gitlab)["canary"] == "success"
        assert jobs(gitlab)["production"] == "manual"
        assert "canary" in shown(bot) and "Pipeline" in shown(bot)

        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await eventually(lambda: "complete" in shown(bot), within=20, what="completion")
        assert jobs(gitlab)["production"] == "success"
        assert jobs(gitlab)["rollback"] == "manual", "rollback is not played on success"
        actions = [e.action for e in await bot.deps.store.audit_recent(50)]
        assert {
            "deploy.requested",
            "deploy.approved",
            "deploy.promoted",
            "deploy.completed",
        } <= set(actions)


async def test_promote_after_a_failed_job_runs_the_job_again(redis_url: str) -> None:
    async with gitlab_deploy_bot(redis_url) as (bot, gitlab):
        gitlab.fail_job("canary", project="acme/api", times=1)
        await bot.driver.command("/deploy", "api 1.4.2", user="U0ALICE")
        await eventually(lambda: "failed" in shown(bot), within=20, what="the failed step")
        assert jobs(gitlab)["canary"] == "failed"
        await bot.driver.command("/deploy", "promote api", user="U0ALICE")
        await eventually(
            lambda: "waiting for approval to go to 100%" in shown(bot),
            within=20,
            what="the canary job to run again",
        )
        assert jobs(gitlab)["canary"] == "success"
        actions = [e.action for e in await bot.deps.store.audit_recent(50)]
        assert "deploy.failed" in actions and "deploy.retried" in actions


async def test_reject_plays_the_rollback_job(redis_url: str) -> None:
    async with gitlab_deploy_bot(redis_url) as (bot, gitlab):
        await bot.driver.command("/deploy", "api 1.4.2", user="U0ALICE")
        await eventually(lambda: "Approve" in shown(bot), within=20, what="the approval request")
        await bot.driver.click("Reject", user="U0BOB", channel=CHANNEL)
        await eventually(lambda: "rolled back" in shown(bot), within=20, what="the rollback")
        assert jobs(gitlab)["rollback"] == "success"
        assert jobs(gitlab)["production"] == "manual", "production never ran"


async def test_a_channel_slack_refuses_stops_the_deploy_before_anything_runs(
    redis_url: str,
) -> None:
    cfg = config(channel="C0NOWHERE")
    async with running_gitlab() as gitlab:
        gitlab.set_pipeline_jobs("acme/api", JOBS)
        async with running_bot(redis_url, config=cfg, **gitlab_env(gitlab)) as bot:
            for _ in range(2):
                await bot.driver.command("/deploy", "api 1.4.2", user="U0ALICE")
            told = await eventually(
                lambda: (
                    [e.text for e in bot.emulator.ephemerals(user="U0ALICE")]
                    if len(bot.emulator.ephemerals(user="U0ALICE")) == 2
                    else None
                ),
                what="both answers",
            )
            assert all("channel_not_found" in t for t in told), told
            assert await bot.deps.store.deploys.load("api") is None
            assert not gitlab.ci.pipelines, "no pipeline was started"
