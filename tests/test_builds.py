"""/build end to end: a signed command in, a pipeline in the GitLab emulator that advances by
itself and sends real Pipeline Hooks to /hooks/gitlab, one live message edited in place."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from bot.config_file import OpsConfig, Project, Roles
from tests.harness import BotUnderTest, gitlab_env, running_bot, running_gitlab
from tests.waiting import eventually

GENERAL = "C0GENERAL"
SECRET = "gitlab-hook-secret"


def config(**web: Any) -> OpsConfig:
    return OpsConfig(
        roles=Roles(deployers=["U0ALICE"]),
        projects={"web": Project(gitlab="acme/web", channel=GENERAL, **web)},
    )


@asynccontextmanager
async def build_bot(
    redis_url: str, cfg: OpsConfig | None = None, *, hooks: bool = True, **env: Any
) -> AsyncIterator[tuple[BotUnderTest, Any]]:
    async with running_gitlab() as gitlab:
        gitlab.pipeline_step_seconds = 0.15
        async with running_bot(
            redis_url,
            config=cfg or config(),
            OPSLOOP_GITLAB_WEBHOOK_SECRET=SECRET,
            **gitlab_env(gitlab),
            **env,
        ) as bot:
            if hooks:
                gitlab.add_hook("acme/web", bot.base_url + "/hooks/gitlab", SECRET)
            yield bot, gitlab


def live(bot: BotUnderTest) -> Any:
    found = [m for m in bot.emulator.messages(GENERAL) if "Pipeline" in m.text]
    return found[0] if len(found) == 1 else None


def shown(message: Any) -> str:
    return message.text + json.dumps(message.blocks)


def ephemerals(bot: BotUnderTest, user: str = "U0ALICE") -> list[str]:
    return [e.text for e in bot.emulator.ephemerals(user=user)]


def queue_drained(bot: BotUnderTest) -> Callable[[], Awaitable[bool]]:
    """Whether every job stored so far (a hook's, a poll's) has run."""

    async def check() -> bool:
        return await bot.deps.store.queue_depth() == 0

    return check


async def ended(bot: BotUnderTest, status: str, within: float = 20) -> Any:
    """The live message once it says `status` (its words: "*passed*", "was *canceled*")."""
    await eventually(
        lambda: live(bot) is not None and status in shown(live(bot)),
        within=within,
        what=f"the live message to say {status}",
    )
    message = live(bot)
    replies = await eventually(
        lambda: bot.emulator.thread(GENERAL, message.ts), what="the result in the thread"
    )
    return message, replies


async def test_a_pipeline_is_followed_to_success_in_one_message(redis_url: str) -> None:
    async with build_bot(redis_url) as (bot, gitlab):
        resp = await bot.driver.command("/build", "web main DEPLOY_ENV=staging", user="U0ALICE")
        assert resp.status == 200 and resp.elapsed_ms < 3000
        message, replies = await ended(bot, "*passed*")
        [pipeline] = gitlab.pipelines("acme/web")
        assert pipeline["ref"] == "main"
        text = shown(message)
        assert "<@U0ALICE>" in text and pipeline["sha"][:8] in text and pipeline["web_url"] in text
        assert "`DEPLOY_ENV`" in text and "staging" not in text  # names only: values may be secret
        assert "Cancel" not in text and "Retry" not in text
        edits = message.edits
        assert len(edits) >= 2, "the one message moved through the stages"
        assert "*passed* after" in replies[-1].text
        assert len(bot.emulator.messages(GENERAL)) == 1
        [entry] = [
            e for e in await bot.deps.store.audit_recent(10) if e.action == "build.triggered"
        ]
        assert entry.who == "U0ALICE" and entry.detail["variables"] == ["DEPLOY_ENV"]


async def test_a_failed_pipeline_names_its_failed_job_and_can_be_retried(redis_url: str) -> None:
    async with build_bot(redis_url) as (bot, gitlab):
        gitlab.fail_job("unit", times=1)
        await bot.driver.command("/build", "web", user="U0ALICE")
        message, replies = await ended(bot, "*failed*")
        assert "Retry" in shown(message)
        result = replies[-1].text
        assert "unit" in result and "/-/jobs/" in result and "failed" in result
        assert "Tests:" in result
        await bot.driver.click("Retry", user="U0ALICE", channel=GENERAL)
        await eventually(
            lambda: live(bot) is not None and "*passed*" in shown(live(bot)),
            within=20,
            what="the retried pipeline to succeed",
        )
        await eventually(
            lambda: any("passed" in r.text for r in bot.emulator.thread(GENERAL, message.ts)),
            what="the second result",
        )
        actions = [e.action for e in await bot.deps.store.audit_recent(10)]
        assert "build.retried" in actions


async def test_cancel_while_running(redis_url: str) -> None:
    async with build_bot(redis_url) as (bot, gitlab):
        gitlab.pipeline_step_seconds = 0.6
        await bot.driver.command("/build", "web", user="U0ALICE")
        await eventually(lambda: live(bot) and "Cancel" in shown(live(bot)), what="Cancel")
        await bot.driver.click("Cancel", user="U0ALICE", channel=GENERAL)
        await ended(bot, "was *canceled*")
        assert "build.cancelled" in [e.action for e in await bot.deps.store.audit_recent(10)]


async def test_protected_refs_need_a_deployer(redis_url: str) -> None:
    async with build_bot(redis_url) as (bot, gitlab):
        await bot.driver.command("/build", "web", user="U0CAROL")
        texts = await eventually(lambda: ephemerals(bot, "U0CAROL"), what="the refusal")
        assert "`main` is protected" in texts[-1] and "roles.deployers" in texts[-1]
        await bot.driver.command("/build", "web v1.0.0", user="U0CAROL")
        await eventually(
            lambda: any("is a tag" in t for t in ephemerals(bot, "U0CAROL")), what="tag refusal"
        )
        assert gitlab.pipelines("acme/web") == []
        await bot.driver.command("/build", "web develop", user="U0CAROL")
        await ended(bot, "*passed*")
        # A deployer's pipeline on main: Carol may not cancel it either.
        gitlab.pipeline_step_seconds = 0.8
        await bot.driver.command("/build", "web main", user="U0ALICE", channel=GENERAL)
        await eventually(
            lambda: any("Cancel" in shown(m) for m in bot.emulator.messages(GENERAL)),
            what="the second pipeline",
        )
        before = len(ephemerals(bot, "U0CAROL"))
        await bot.driver.click("Cancel", user="U0CAROL", channel=GENERAL)
        await eventually(lambda: len(ephemerals(bot, "U0CAROL")) > before, what="refusal")
        assert "protected" in ephemerals(bot, "U0CAROL")[-1]


async def test_bad_input_gets_a_clear_message(redis_url: str) -> None:
    async with build_bot(redis_url) as (bot, gitlab):
        for text, problem in {
            "": "Which project?",
            "web main 1X=2": "is not a variable name",
            "web main FOO": "`FOO` is not a variable; write KEY=VALUE",
            "web main A=1 A=2": "`A` is given twice",
            "status": "takes a project",
        }.items():
            resp = await bot.driver.command("/build", text, user="U0ALICE")
            assert resp.json is not None and problem in resp.json["text"], (text, resp.json)
        await bot.driver.command("/build", "nope", user="U0ALICE")
        await bot.driver.command("/build", "web no-such-branch", user="U0ALICE")
        await eventually(
            lambda: (
                any("`nope` is not a project alias" in t for t in ephemerals(bot))
                and any("`no-such-branch` is not a branch or tag" in t for t in ephemerals(bot))
            ),
            what="both answers",
        )
        assert gitlab.pipelines("acme/web") == []


async def test_duplicate_and_late_hooks_act_once_and_never_go_back(redis_url: str) -> None:
    async with build_bot(redis_url) as (bot, gitlab):
        gitlab.deliver_hooks_out_of_order = True
        await bot.driver.command("/build", "web", user="U0ALICE")
        message, _ = await ended(bot, "*passed*")
        await gitlab.redeliver_last_hook()
        for event in list(gitlab.hook_events)[:3]:
            await gitlab.redeliver_hook(event)  # old states arriving very late
        await eventually(lambda: "*passed*" in shown(live(bot)), what="still success")
        assert "*passed*" in shown(live(bot))
        results = [r for r in bot.emulator.thread(GENERAL, message.ts) if "after" in r.text]
        assert len(results) == 1


async def test_the_webhook_route_guards_itself(redis_url: str) -> None:
    async with build_bot(redis_url) as (bot, _), aiohttp.ClientSession() as http:
        url = bot.base_url + "/hooks/gitlab"
        headers = {"X-Gitlab-Event": "Pipeline Hook", "X-Gitlab-Token": "wrong"}
        async with http.post(url, json={"object_kind": "pipeline"}, headers=headers) as r:
            assert r.status == 401
        headers["X-Gitlab-Token"] = SECRET
        async with http.post(url, data=b"{broken", headers=headers) as r:
            assert r.status == 400
        async with http.post(url, json={}, headers={**headers, "X-Gitlab-Event": "Push Hook"}) as r:
            assert r.status == 200 and (await r.json())["status"] == "ignored"
    async with (
        running_bot(redis_url) as bot,
        aiohttp.ClientSession() as http,
        http.post(bot.base_url + "/hooks/gitlab", json={}) as r,
    ):
        assert r.status == 404  # no secret configured


async def test_without_hooks_the_bot_polls(redis_url: str) -> None:
    async with build_bot(redis_url, hooks=False, OPSLOOP_BUILD_POLL_SECONDS=0.3) as (bot, gitlab):
        await bot.driver.command("/build", "web", user="U0ALICE")
        await ended(bot, "*passed*", within=30)
        assert gitlab.hook_deliveries == []


async def test_gitlab_down_is_a_clear_message(redis_url: str) -> None:
    async with build_bot(redis_url) as (bot, gitlab):
        gitlab.fail(500)
        await bot.driver.command("/build", "web", user="U0ALICE")
        texts = await eventually(lambda: ephemerals(bot), within=30, what="the answer")
        assert "GitLab is unavailable, try again" in texts[-1]


async def test_status_shows_the_latest_pipeline(redis_url: str) -> None:
    async with build_bot(redis_url) as (bot, _):
        await bot.driver.command("/build", "web", user="U0ALICE")
        await ended(bot, "*passed*")
        await bot.driver.command("/build", "status web", user="U0CAROL")
        texts = await eventually(lambda: ephemerals(bot, "U0CAROL"), what="status")
        assert "passed" in texts[-1] and "acme/web" in texts[-1]


async def test_a_failed_default_branch_started_elsewhere_is_announced(redis_url: str) -> None:
    cfg = config(notify_failed_default_branch=True)
    async with build_bot(redis_url, cfg) as (bot, gitlab):
        gitlab.fail_job("unit", times=1)
        gitlab.start_pipeline("acme/web", "main")
        await eventually(
            lambda: any("default branch" in shown(m) for m in bot.emulator.messages(GENERAL)),
            within=20,
            what="the announcement",
        )
        # A failure on another branch is not announced: let one fail, and the bot take it in.
        gitlab.fail_job("unit", times=1)
        develop = gitlab.start_pipeline("acme/web", "develop")
        assert (await gitlab.wait_for_pipeline(develop["id"], seconds=20))["status"] == "failed"
        [failed] = [
            e
            for e in gitlab.hook_events
            if e.body["object_attributes"]["id"] == develop["id"] and e.status == "failed"
        ]
        await gitlab.hooks_settled()
        assert [d.status for d in gitlab.hook_deliveries if d.uuid == failed.uuid] == [200]
        await eventually(queue_drained(bot), what="the bot to handle the hook")
        announced = [m for m in bot.emulator.messages(GENERAL) if "default branch" in shown(m)]
        assert len(announced) == 1 and "`main`" in shown(announced[0])


def test_a_status_reads_as_words_and_an_unknown_one_as_itself() -> None:
    from bot.builds.messages import status_words

    assert status_words("success") == "*passed*"
    assert status_words("running") == "is *running*"
    assert status_words("canceled", bold=False) == "was canceled"
    # Statuses are an open set: a new one is shown as a status, never as "is success".
    assert status_words("waiting_for_callback") == "has status *waiting_for_callback*"
    assert status_words("<!channel>") == "has status *&lt;!channel&gt;*"
