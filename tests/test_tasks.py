"""/task end to end: signed Slack requests in, the real python-gitlab client against the GitLab
emulator, recorded Slack and GitLab traffic out."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bot.config_file import OpsConfig, Project, Roles
from tests.harness import BotUnderTest, gitlab_env, running_bot, running_gitlab
from tests.waiting import eventually

GENERAL, DEPLOYS = "C0GENERAL", "C0DEPLOYS"


def config(**extra: Any) -> OpsConfig:
    return OpsConfig(
        roles=Roles(deployers=["U0ALICE"], approvers=["U0BOB"]),
        projects={
            "web": Project(gitlab="acme/web", channel=GENERAL),
            "api": Project(gitlab="acme/api", channel=DEPLOYS),
        },
        **extra,
    )


@asynccontextmanager
async def task_bot(
    redis_url: str, cfg: OpsConfig | None = None, **kwargs: Any
) -> AsyncIterator[tuple[BotUnderTest, Any]]:
    async with (
        running_gitlab() as gitlab,
        running_bot(redis_url, config=cfg or config(), **gitlab_env(gitlab), **kwargs) as bot,
    ):
        yield bot, gitlab


def ephemerals(bot: BotUnderTest, user: str = "U0ALICE") -> list[str]:
    return [e.text for e in bot.emulator.ephemerals(user=user)]


def task_messages(bot: BotUnderTest, channel: str = GENERAL) -> list[Any]:
    return [m for m in bot.emulator.messages(channel) if "Assign to me" in json.dumps(m.blocks)]


async def audit_actions(bot: BotUnderTest, action: str) -> list[Any]:
    return [e for e in await bot.deps.store.audit_recent(100) if e.action == action]


async def test_task_with_options_files_the_issue_and_posts_its_message(redis_url: str) -> None:
    async with task_bot(redis_url) as (bot, gitlab):
        resp = await bot.driver.command(
            "/task",
            "Fix the login redirect <@U0CAROL|carol> #bug label:frontend -- it loops on Safari",
            user="U0ALICE",
            channel=GENERAL,
        )
        assert resp.status == 200 and resp.elapsed_ms < 3000
        [message] = await eventually(lambda: task_messages(bot), what="the task message")
        [issue] = gitlab.issues("acme/web")
        assert issue["title"] == "Fix the login redirect"
        assert issue["description"].startswith("it loops on Safari\n\n<!-- opsloop request ")
        assert issue["labels"] == ["bug", "frontend"]
        assert [a["username"] for a in issue["assignees"]] == ["carol"]
        shown = json.dumps(message.blocks)
        assert issue["web_url"] in shown and "acme/web#1" in shown
        assert "Fix the login redirect" in shown and "`bug`" in shown and "@carol" in shown
        assert "Close" in shown
        [entry] = await audit_actions(bot, "task.created")
        assert entry.who == "U0ALICE" and entry.subject == "acme/web#1"


async def test_a_title_with_the_word_payload_is_filed(redis_url: str) -> None:
    # Bolt's own parse takes a form containing "payload" for a click and makes it empty; such
    # a command once matched no listener and got a 404.
    async with task_bot(redis_url) as (bot, gitlab):
        resp = await bot.driver.command(
            "/task", "Limit the webhook payload size", user="U0ALICE", channel=GENERAL
        )
        assert resp.status == 200 and resp.body == ""
        [issue] = await eventually(lambda: gitlab.issues("acme/web"), what="the issue")
        assert issue["title"] == "Limit the webhook payload size"


async def test_the_channel_picks_the_project_and_an_alias_overrides_it(redis_url: str) -> None:
    async with task_bot(redis_url) as (bot, gitlab):
        await bot.driver.command("/task", "Rotate the API keys", user="U0ALICE", channel=DEPLOYS)
        await bot.driver.command(
            "/task", "Update docs project:api", user="U0ALICE", channel=GENERAL
        )
        await eventually(lambda: len(gitlab.issues("acme/api")) == 2, what="two api issues")
        assert gitlab.issues("acme/web") == []


async def test_bad_input_gets_usage_in_the_ack_and_files_nothing(redis_url: str) -> None:
    async with task_bot(redis_url) as (bot, gitlab):
        cases = {
            "#bug @carol": "needs a title",
            "Something project:": "`project:` needs a project",
            "close": "takes one task reference",
            "close banana": "not a task reference",
            "list mine web extra": "one project at most",
        }
        for text, problem in cases.items():
            resp = await bot.driver.command("/task", text, user="U0ALICE", channel=GENERAL)
            assert resp.json is not None, text
            assert problem in resp.json["text"], (text, resp.json["text"])
            assert "/task list" in resp.json["text"]  # the usage, so they see what to type
        resp = await bot.driver.command("/task", "Thing project:nope", channel=GENERAL)
        await eventually(
            lambda: any(
                "`nope` is not a project alias (known: api, web)" in t for t in ephemerals(bot)
            ),
            what="the unknown project answer",
        )
        assert gitlab.issues("acme/web") == [] and gitlab.issues("acme/api") == []


async def test_gitlab_not_configured_is_said_plainly(redis_url: str) -> None:
    async with running_bot(redis_url, config=config()) as bot:
        await bot.driver.command("/task", "Something", user="U0ALICE", channel=GENERAL)
        texts = await eventually(lambda: ephemerals(bot), what="the answer")
        assert "GitLab is not configured" in texts[0] and "OPSLOOP_GITLAB_URL" in texts[0]
        resp = await bot.driver.command("/task", "", user="U0ALICE", channel=GENERAL)
        assert resp.json is not None and "GitLab is not configured" in resp.json["text"]


async def test_the_modal_checks_its_inputs_and_files_the_task(redis_url: str) -> None:
    async with task_bot(redis_url) as (bot, gitlab):
        resp = await bot.driver.command("/task", "", user="U0ALICE", channel=DEPLOYS)
        assert resp.status == 200
        [view] = [v for v in bot.emulator.views.values() if v.is_open]
        assert view.view["callback_id"] == "task_create"
        project_block = next(b for b in view.view["blocks"] if b["block_id"] == "project")
        assert project_block["element"]["initial_option"]["value"] == "api"
        answer = await bot.driver.submit_view(
            view.id,
            {"title": {"value": "Fix it"}, "project": {"value": "api"},
             "labels": {"value": "has space, ok"}},
            user="U0ALICE",
        )  # fmt: skip
        assert answer.json is not None and answer.json["response_action"] == "errors"
        assert "labels" in answer.json["errors"]
        assert view.is_open and gitlab.issues("acme/api") == []
        answer = await bot.driver.submit_view(
            view.id,
            {
                "title": {"value": "Fix the flaky deploy"},
                "description": {"value": "It fails one time in ten."},
                "project": {"value": "api"},
                "labels": {"value": "ci, flaky"},
                "assignee": {"value": "U0BOB"},
            },
            user="U0ALICE",
        )
        assert answer.status == 200
        [message] = await eventually(lambda: task_messages(bot, DEPLOYS), what="task message")
        [issue] = gitlab.issues("acme/api")
        assert issue["labels"] == ["ci", "flaky"]
        assert [a["username"] for a in issue["assignees"]] == ["bob"]
        assert "Fix the flaky deploy" in json.dumps(message.blocks)


async def test_list_assign_to_me_and_close_update_the_message_in_place(redis_url: str) -> None:
    async with task_bot(redis_url) as (bot, gitlab):
        await bot.driver.command("/task", "First thing", user="U0ALICE", channel=GENERAL)
        await bot.driver.command("/task", "Second thing", user="U0ALICE", channel=GENERAL)
        await eventually(lambda: len(task_messages(bot)) == 2, what="two task messages")

        click = await bot.driver.click("Assign to me", user="U0CAROL", channel=GENERAL)
        assert click.status == 200
        await eventually(
            lambda: any(i["assignees"] for i in gitlab.issues("acme/web")), what="assignment"
        )
        assigned = next(i for i in gitlab.issues("acme/web") if i["assignees"])
        assert assigned["assignees"][0]["username"] == "carol"  # found by e-mail
        await eventually(
            lambda: any("@carol" in json.dumps(m.blocks) for m in bot.emulator.messages(GENERAL)),
            what="the message to show the assignee",
        )
        edited = next(m for m in bot.emulator.messages(GENERAL) if "@carol" in json.dumps(m.blocks))
        assert "Filed by" in json.dumps(edited.blocks)  # the update keeps who filed it

        await bot.driver.command("/task", "list mine", user="U0CAROL", channel=GENERAL)
        mine = await eventually(lambda: ephemerals(bot, "U0CAROL"), what="list mine")
        assert assigned["title"] in mine[-1] and "1 task" in mine[-1]

        other = next(i for i in gitlab.issues("acme/web") if not i["assignees"])
        await bot.driver.command("/task", f"close web#{other['iid']}", channel=GENERAL)
        await eventually(
            lambda: any(i["state"] == "closed" for i in gitlab.issues("acme/web")), what="close"
        )
        updates = await eventually(
            lambda: [c for c in bot.emulator.calls if c.method == "chat.update"], what="update"
        )
        assert updates, "the task's own message is updated, no new message posted"
        # The closed one loses its buttons.
        await eventually(lambda: len(task_messages(bot)) == 1, what="the closed task's message")
        assert len(bot.emulator.messages(GENERAL)) == 2
        actions = [e.action for e in await bot.deps.store.audit_recent(20)]
        assert "task.assigned" in actions and "task.closed" in actions


async def test_an_unmatched_person_gets_told_how_to_fix_it(redis_url: str) -> None:
    async with task_bot(redis_url) as (bot, gitlab):
        await bot.driver.command("/task", "Thing <@U0DAVE|dave>", user="U0ALICE", channel=GENERAL)
        texts = await eventually(lambda: ephemerals(bot), what="the answer")
        assert "No GitLab user has <@U0DAVE>'s e-mail address" in texts[0]
        assert "users: {U0DAVE: their-gitlab-name}" in texts[0]
        await bot.driver.command("/task", "@nobody Fix it", user="U0ALICE", channel=GENERAL)
        answer = await eventually(
            lambda: [t for t in ephemerals(bot) if "GitLab has no user `nobody`" in t],
            what="the unknown GitLab name",
        )
        # What was wrong and what to type or configure instead, the vendor's name once.
        assert "no task was filed" in answer[0] and "GitLab: GitLab" not in answer[0]
        assert "Assign with a GitLab username (`@their-gitlab-name`)" in answer[0]
        assert "`users: {<their Slack ID, U…>: their-gitlab-name}`" in answer[0]
        assert gitlab.issues("acme/web") == []
    # The YAML map settles it.
    async with task_bot(redis_url, config(users={"U0DAVE": "bob"})) as (bot, gitlab):
        await bot.driver.command("/task", "Thing <@U0DAVE|dave>", user="U0ALICE", channel=GENERAL)
        await eventually(lambda: gitlab.issues("acme/web"), what="the issue")
        assert gitlab.issues("acme/web")[0]["assignees"][0]["username"] == "bob"


async def test_every_gitlab_failure_reaches_the_person_as_a_clear_message(redis_url: str) -> None:
    expected = {
        401: "rejected opsloop's token",
        403: "not allowed",
        404: "not found",
        429: "GitLab is unavailable, try again",
        500: "GitLab is unavailable, try again",
    }
    async with task_bot(redis_url) as (bot, gitlab):
        for status, words in expected.items():
            gitlab.fail(status)
            before = len(ephemerals(bot))
            started = time.monotonic()
            resp = await bot.driver.command("/task", f"Broken {status}", channel=GENERAL)
            assert resp.status == 200
            texts = await eventually(
                lambda n=before: len(ephemerals(bot)) > n, within=30, what=f"the {status} answer"
            )
            assert texts
            text = ephemerals(bot)[-1]
            assert words in text, (status, text)
            assert time.monotonic() - started < 30
            assert "glpat" not in text and "Traceback" not in text
            gitlab.heal()
        assert gitlab.issues("acme/web") == []


async def test_a_slow_gitlab_does_not_slow_the_ack(redis_url: str) -> None:
    async with task_bot(redis_url) as (bot, gitlab):
        gitlab.delay = 5.0
        resp = await bot.driver.command("/task", "Slow one", user="U0ALICE", channel=GENERAL)
        assert resp.status == 200
        assert resp.elapsed_ms < 3000, resp.elapsed_ms
        await eventually(lambda: task_messages(bot), within=30, what="the task, later")
        assert len(gitlab.issues("acme/web")) == 1


async def test_a_retried_command_files_one_issue(redis_url: str) -> None:
    async with task_bot(redis_url) as (bot, gitlab):
        first = await bot.driver.command("/task", "Only once", user="U0ALICE", channel=GENERAL)
        await bot.driver.retry(first, retry_num=1)
        await eventually(lambda: task_messages(bot), what="the task message")
        await asyncio.sleep(0.3)
        assert len(gitlab.issues("acme/web")) == 1
        assert len(task_messages(bot)) == 1


async def test_double_dash_separates_the_title_from_the_description(redis_url: str) -> None:
    async with task_bot(redis_url) as (bot, gitlab):
        # `--` first: no title, so nothing is filed and the answer says what to type instead.
        resp = await bot.driver.command(
            "/task", "-- only a description", user="U0ALICE", channel=GENERAL
        )
        assert resp.json is not None
        text = resp.json["text"]
        assert "A task needs a title before `--`" in text
        assert "`/task &lt;title&gt; -- only a description`" in text
        assert "`/task only a description` to make it the title" in text
        resp = await bot.driver.command("/task", "--", user="U0ALICE", channel=GENERAL)
        assert resp.json is not None and "A task needs a title" in resp.json["text"]

        for typed in ("Title -- the description", "Empty description --", "a--b --flag -- x -- y"):
            await bot.driver.command("/task", typed, user="U0ALICE", channel=GENERAL)
        await eventually(lambda: len(gitlab.issues("acme/web")) == 3, what="three issues")
        issues = gitlab.issues("acme/web")
        filed = {i["title"]: i["description"].split("<!-- opsloop")[0].strip() for i in issues}
        assert filed == {
            "Title": "the description",
            "Empty description": "",
            "a--b --flag": "x -- y",
        }
        assert not any(title.startswith("--") for title in filed)


async def test_closing_a_closed_task_says_so_and_leaves_the_tracker_alone(redis_url: str) -> None:
    import aiohttp

    async with task_bot(redis_url) as (bot, gitlab):
        await bot.driver.command("/task", "First thing", user="U0ALICE", channel=GENERAL)
        await bot.driver.command("/task", "Second thing", user="U0ALICE", channel=GENERAL)
        await eventually(lambda: len(task_messages(bot)) == 2, what="two task messages")
        await bot.driver.command("/task", "close web#1", user="U0ALICE", channel=GENERAL)
        await eventually(lambda: any("Closed" in t for t in ephemerals(bot)), what="closed")
        await bot.driver.command("/task", "close web#1", user="U0ALICE", channel=GENERAL)
        [again] = await eventually(
            lambda: [t for t in ephemerals(bot) if "already closed" in t], what="the second close"
        )
        assert "was already closed by <@U0ALICE> at <!date^" in again
        assert "nothing was changed" in again and "Closed" not in again
        assert len(gitlab.requests_to("/api/v4/projects/*/issues/1", "PUT")) == 1

        # Closed in GitLab itself: its Close button answers so, and the message catches up.
        async with (
            aiohttp.ClientSession() as http,
            http.put(
                f"{gitlab.api_url}/projects/acme%2Fweb/issues/2",
                params={"state_event": "close"},
                headers={"PRIVATE-TOKEN": gitlab.token},
            ) as r,
        ):
            assert r.status == 200
        await bot.driver.click("Close", user="U0CAROL", channel=GENERAL)
        [told] = await eventually(
            lambda: [t for t in ephemerals(bot, "U0CAROL") if "already closed" in t],
            what="the answer to Close",
        )
        assert "Second thing" in told and " by " not in told
        await eventually(lambda: task_messages(bot) == [], what="no Close button left")
        assert len(gitlab.requests_to("/api/v4/projects/*/issues/2", "PUT")) == 1
        closes = [e for e in await bot.deps.store.audit_recent(20) if e.action == "task.closed"]
        assert [e.subject for e in closes] == ["acme/web#1"]
