"""Tasks from an alert's Create task button and from "Create task from message": both open the
task form with a project picker, prefilled from their source; its submission files the issue
once and links it in the source's thread. Signed Slack requests in, the GitLab emulator behind."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from bot.config_file import AlertRoute, Alerts, OpsConfig, Project, Roles
from bot.sandbox.emulators.slack import View
from bot.sandbox.emulators.slack.payloads import encode_payload
from tests.alert_payloads import TOKEN, sample
from tests.harness import BotUnderTest, gitlab_env, running_bot, running_gitlab
from tests.waiting import eventually

GENERAL, DEPLOYS, ALERTS = "C0GENERAL", "C0DEPLOYS", "C0ALERTS"
TWO_PROJECTS = {
    "web": Project(gitlab="acme/web", channel=GENERAL),
    "api": Project(gitlab="acme/api", channel=DEPLOYS),
}


def config(projects: dict[str, Project] = TWO_PROJECTS) -> OpsConfig:
    """Alerts go to #alerts, a channel with no project of its own."""
    return OpsConfig(
        roles=Roles(deployers=["U0ALICE"], approvers=["U0BOB"]),
        projects=projects,
        alerts=Alerts(routes=[AlertRoute(channel=ALERTS)]),
    )


@asynccontextmanager
async def alert_bot(
    redis_url: str, cfg: OpsConfig | None = None, *, with_gitlab: bool = True
) -> AsyncIterator[tuple[BotUnderTest, Any]]:
    async with running_gitlab() as gitlab:
        env = gitlab_env(gitlab) if with_gitlab else {}
        async with running_bot(
            redis_url,
            config=cfg or config(),
            OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN=TOKEN,
            **env,
        ) as bot:
            yield bot, gitlab


async def fire_alert(bot: BotUnderTest) -> Any:
    """The sample HighLatency group, posted in #alerts as AL-1; its parent message."""
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        body = sample("alertmanager-firing.json")
        async with http.post(bot.base_url + "/hooks/alertmanager", json=body, headers=headers):
            pass
    [parent] = await eventually(lambda: bot.emulator.messages(ALERTS), what="the alert message")
    return parent


def open_views(bot: BotUnderTest) -> list[View]:
    return [v for v in bot.emulator.views.values() if v.is_open]


def block(view: View, block_id: str) -> dict[str, Any]:
    return next(b for b in view.view["blocks"] if b.get("block_id") == block_id)


def ephemerals(bot: BotUnderTest, user: str) -> list[str]:
    return [e.text for e in bot.emulator.ephemerals(user=user)]


async def test_create_task_on_an_alert_opens_the_form_with_a_project_picker(
    redis_url: str,
) -> None:
    async with alert_bot(redis_url) as (bot, gitlab):
        parent = await fire_alert(bot)
        resp = await bot.driver.click("Create task", user="U0BOB", channel=ALERTS)
        assert resp.status == 200 and resp.elapsed_ms < 3000
        [view] = open_views(bot)
        assert view.user == "U0BOB" and view.view["callback_id"] == "task_create"
        # Prefilled from the group; #alerts has no project and there are two: none picked.
        title = block(view, "title")["element"]["initial_value"]
        assert title == "AL-1 HighLatency: p99 latency > 2s"
        description = block(view, "description")["element"]["initial_value"]
        for part in (
            "severity critical",
            "Firing: web-1",
            "service=api",
            "Runbook: http://127.0.0.1/runbook",
            "Source: http://127.0.0.1:9090/graph",
        ):
            assert part in description, (part, description)
        picker = block(view, "project")["element"]
        assert picker["type"] == "static_select" and "initial_option" not in picker
        assert [o["value"] for o in picker["options"]] == ["api", "web"]
        assert "Which project?" not in json.dumps(ephemerals(bot, "U0BOB"))

        # No project: the form says so under the picker and stays open; nothing is filed.
        answer = await submit_raw(bot, view, project=None)
        assert answer == {
            "response_action": "errors",
            "errors": {"project": "Pick one of the projects."},
        }
        assert view.is_open and await bot.deps.store.queue_depth() == 0

        submitted = await bot.driver.submit_view(view.id, {"project": {"value": "api"}})
        assert submitted.status == 200 and not view.is_open
        replies = await eventually(
            lambda: bot.emulator.thread(ALERTS, parent.ts), what="the link in the alert's thread"
        )
        [issue] = gitlab.issues("acme/api")
        assert issue["title"] == "AL-1 HighLatency: p99 latency > 2s"
        assert "Firing: web-1" in issue["description"]
        assert f"/archives/{ALERTS}/p{parent.ts.replace('.', '')}" in issue["description"]
        assert issue["web_url"] in replies[-1].text and "<@U0BOB>" in replies[-1].text
        assert gitlab.issues("acme/web") == []

        # Slack delivering the same submission again files nothing more.
        again = await bot.driver.retry(submitted, retry_num=1)
        assert again.status == 200
        await asyncio.sleep(0.5)
        entries = [e for e in await bot.deps.store.audit_recent(20) if e.action == "task.created"]
        assert len(entries) == 1 and entries[0].who == "U0BOB"
        assert len(gitlab.issues("acme/api")) == 1
        assert len(bot.emulator.thread(ALERTS, parent.ts)) == len(replies)


async def submit_raw(bot: BotUnderTest, view: View, *, project: str | None) -> Any:
    """A view_submission with the form as it stands and this project, past the Slack
    client's own check for an empty required input (what a stale client could send)."""
    values: dict[str, Any] = {
        "title": {"value": {"type": "plain_text_input", "value": "AL-1 HighLatency"}},
        "project": {
            "value": {
                "type": "static_select",
                "selected_option": {"value": project} if project else None,
            }
        },
    }
    payload = {
        "type": "view_submission",
        "team": {"id": "T0SANDBOX", "domain": "opsloop-sandbox"},
        "user": {"id": view.user, "username": "bob", "name": "bob", "team_id": "T0SANDBOX"},
        "trigger_id": "13345224609.738474920.8088930838d88f008e1",
        "view": {**view.view, "state": {"values": values}},
        "response_urls": [],
    }
    resp = await bot.driver.send_raw(encode_payload(payload))
    assert resp.status == 200, resp.body
    return resp.json


async def test_the_channels_project_or_the_only_project_is_preselected(redis_url: str) -> None:
    only_web = {"web": Project(gitlab="acme/web", channel=GENERAL)}
    async with alert_bot(redis_url, config(only_web)) as (bot, gitlab):
        await fire_alert(bot)
        await bot.driver.click("Create task", user="U0ALICE", channel=ALERTS)
        [view] = open_views(bot)
        assert block(view, "project")["element"]["initial_option"]["value"] == "web"
        await bot.driver.submit_view(view.id)  # as prefilled
        [issue] = await eventually(lambda: gitlab.issues("acme/web"), what="the issue")
        assert issue["title"].startswith("AL-1 HighLatency")


async def test_a_message_becomes_a_task_through_the_form(redis_url: str) -> None:
    async with alert_bot(redis_url) as (bot, gitlab):
        posted = await bot.deps.slack.post_message(
            DEPLOYS, "Checkout times out for EU users\nSeen since 10:00 in the logs."
        )
        message = bot.emulator.message(DEPLOYS, posted.ts)
        assert message is not None
        resp = await bot.driver.message_shortcut("task_from_message", message, user="U0BOB")
        assert resp.status == 200 and resp.elapsed_ms < 3000
        [view] = open_views(bot)
        assert block(view, "title")["element"]["initial_value"] == "Checkout times out for EU users"
        assert "Seen since 10:00" in block(view, "description")["element"]["initial_value"]
        # #deploys is api's channel.
        assert block(view, "project")["element"]["initial_option"]["value"] == "api"
        await bot.driver.submit_view(view.id, {"labels": {"value": "checkout"}})
        replies = await eventually(
            lambda: bot.emulator.thread(DEPLOYS, posted.ts), what="the link in the thread"
        )
        [issue] = gitlab.issues("acme/api")
        assert issue["title"] == "Checkout times out for EU users"
        assert issue["labels"] == ["checkout"]
        assert "Seen since 10:00" in issue["description"]
        assert f"/archives/{DEPLOYS}/p{posted.ts.replace('.', '')}" in issue["description"]
        assert issue["web_url"] in replies[0].text and "Task created by <@U0BOB>" in replies[0].text


async def test_create_task_without_a_tracker_says_so_and_opens_nothing(redis_url: str) -> None:
    async with alert_bot(redis_url, with_gitlab=False) as (bot, _):
        await fire_alert(bot)
        # No tracker: the alert has no Create task button; an old message's button still answers.
        msg = bot.emulator.post(
            ALERTS,
            user=bot.emulator.bot_user_id,
            text="an alert posted while GitLab was configured",
            blocks=[
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": "alert_create_task",
                            "text": {"type": "plain_text", "text": "Create task"},
                            "value": "AL-1",
                        }
                    ],
                }
            ],
        )
        resp = await bot.driver.click("Create task", user="U0ALICE", message=msg)
        assert resp.status == 200
        texts = await eventually(lambda: ephemerals(bot, "U0ALICE"), what="the answer")
        assert "GitLab is not configured" in texts[0] and "OPSLOOP_GITLAB_URL" in texts[0]
        assert open_views(bot) == []


async def test_a_click_stored_before_the_form_existed_files_nothing_and_says_so(
    redis_url: str,
) -> None:
    """A rolling upgrade: a Create task job an older opsloop stored, run by this one."""
    from bot.slack_requests import ActionRequest

    async with alert_bot(redis_url) as (bot, gitlab):
        old = ActionRequest(
            action_id="alert_create_task",
            block_id="alert_actions:AL-1",
            value="AL-1",
            user_id="U0ALICE",
            user_name="alice",
            channel_id=ALERTS,
            message_ts="",
            is_ephemeral=False,
            response_url="",
            trigger_id="",
        )
        await bot.deps.queue.enqueue("tasks.from_alert", {"request": old.to_dict()}, job_id="x:1")
        [told] = await eventually(lambda: ephemerals(bot, "U0ALICE"), what="the answer")
        assert "No task was filed" in told and "again" in told
        assert gitlab.issues("acme/web") == [] and gitlab.issues("acme/api") == []
