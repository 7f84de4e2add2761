"""/task on a Jira project, end to end: signed Slack requests in, the Jira adapter against the
Jira emulator, while GitLab keeps serving the project without `jira:` (one bot, two trackers)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bot.config_file import AlertRoute, Alerts, OpsConfig, Project, Roles
from bot.sandbox.emulators.jira import DEFAULT_USERS, JiraEmulator
from bot.sandbox.emulators.jira.state import adf_text
from tests.alert_payloads import TOKEN
from tests.harness import BotUnderTest, gitlab_env, running_bot, running_gitlab
from tests.test_tasks_from_sources import fire_alert
from tests.waiting import eventually

GENERAL, DEPLOYS, ALERTS = "C0GENERAL", "C0DEPLOYS", "C0ALERTS"
CAROL = next(u for u in DEFAULT_USERS if u.email == "carol@example.com")


def config(**projects: Project) -> OpsConfig:
    return OpsConfig(
        roles=Roles(deployers=["U0ALICE"], approvers=["U0BOB"]),
        projects=projects
        or {
            "web": Project(gitlab="acme/web", channel=GENERAL),
            "ops": Project(jira="OPS", channel=DEPLOYS),
        },
        alerts=Alerts(routes=[AlertRoute(channel=ALERTS)]),
    )


def jira_env(jira: JiraEmulator, token: str | None = None) -> dict[str, str]:
    assert jira.url is not None
    return {
        "OPSLOOP_JIRA_URL": jira.url,
        "OPSLOOP_JIRA_EMAIL": jira.email,
        "OPSLOOP_JIRA_TOKEN": token or jira.token,
    }


@asynccontextmanager
async def jira_bot(
    redis_url: str, cfg: OpsConfig | None = None, *, token: str | None = None, **env: str
) -> AsyncIterator[tuple[BotUnderTest, JiraEmulator, Any]]:
    jira = JiraEmulator()
    async with (
        jira.serve(),
        running_gitlab() as gitlab,
        running_bot(
            redis_url,
            config=cfg or config(),
            OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN=TOKEN,
            **gitlab_env(gitlab),
            **jira_env(jira, token),
            **env,
        ) as bot,
    ):
        yield bot, jira, gitlab


def ephemerals(bot: BotUnderTest, user: str = "U0ALICE") -> list[str]:
    return [e.text for e in bot.emulator.ephemerals(user=user)]


def task_messages(bot: BotUnderTest, channel: str = DEPLOYS) -> list[Any]:
    return [m for m in bot.emulator.messages(channel) if "Assign to me" in json.dumps(m.blocks)]


def issues(jira: JiraEmulator, project: str = "OPS") -> list[Any]:
    return [i for i in jira.issues.values() if i.project == project]


async def test_a_jira_project_files_its_tasks_in_jira_and_gitlab_keeps_the_others(
    redis_url: str,
) -> None:
    async with jira_bot(redis_url) as (bot, jira, gitlab):
        resp = await bot.driver.command(
            "/task",
            "Rotate the TLS cert <@U0CAROL|carol> #security -- expires Friday",
            user="U0ALICE",
            channel=DEPLOYS,
        )
        assert resp.status == 200 and resp.elapsed_ms < 3000
        [message] = await eventually(lambda: task_messages(bot), what="the task message")
        [issue] = issues(jira)
        assert (issue.key, issue.summary) == ("OPS-1", "Rotate the TLS cert")
        assert adf_text(issue.description) == "expires Friday"
        assert issue.labels[0] == "security" and issue.labels[1].startswith("opsloop-request-")
        assert issue.assignee == CAROL.account_id  # found by her Slack e-mail
        shown = json.dumps(message.blocks)
        assert "OPS-1" in shown and f"{jira.url}/browse/OPS-1" in shown
        assert "@Carol Oncall" in shown and "opsloop-request" not in shown
        [entry] = [e for e in await bot.deps.store.audit_recent(20) if e.action == "task.created"]
        assert entry.subject == "OPS-1" and entry.who == "U0ALICE"

        await bot.driver.command("/task", "Fix the footer", user="U0ALICE", channel=GENERAL)
        await eventually(lambda: gitlab.issues("acme/web"), what="the GitLab issue")
        assert len(issues(jira)) == 1


async def test_assign_close_and_list_work_on_jira_references(redis_url: str) -> None:
    async with jira_bot(redis_url) as (bot, jira, _):
        await bot.driver.command("/task", "First thing", user="U0ALICE", channel=DEPLOYS)
        await eventually(lambda: len(task_messages(bot)) == 1, what="the first task message")
        await bot.driver.command("/task", "Second thing", user="U0ALICE", channel=DEPLOYS)
        await eventually(lambda: len(task_messages(bot)) == 2, what="two task messages")

        click = await bot.driver.click("Assign to me", user="U0CAROL", channel=DEPLOYS)
        assert click.status == 200
        await eventually(lambda: any(i.assignee for i in issues(jira)), what="the assignment")
        assigned = next(i for i in issues(jira) if i.assignee)
        assert assigned.assignee == CAROL.account_id
        await eventually(
            lambda: any("@Carol Oncall" in json.dumps(m.blocks) for m in task_messages(bot)),
            what="the message to show the assignee",
        )

        await bot.driver.command("/task", "list mine", user="U0CAROL", channel=DEPLOYS)
        mine = await eventually(lambda: ephemerals(bot, "U0CAROL"), what="list mine")
        assert assigned.summary in mine[-1] and "1 task" in mine[-1]

        other = next(i for i in issues(jira) if not i.assignee)
        await bot.driver.command("/task", f"close {other.key}", user="U0ALICE", channel=GENERAL)
        await eventually(lambda: other.status.category == "done", what="the done transition")
        assert other.status.name == "Done"
        await eventually(lambda: len(task_messages(bot)) == 1, what="the closed task's message")

        await bot.driver.click("Close", user="U0ALICE", channel=DEPLOYS)
        await eventually(lambda: assigned.status.category == "done", what="closed by its button")
        actions = [e.action for e in await bot.deps.store.audit_recent(20)]
        assert "task.assigned" in actions and actions.count("task.closed") == 2


async def test_the_modal_files_in_the_jira_project(redis_url: str) -> None:
    async with jira_bot(redis_url) as (bot, jira, _):
        await bot.driver.command("/task", "", user="U0ALICE", channel=DEPLOYS)
        [view] = [v for v in bot.emulator.views.values() if v.is_open]
        project = next(b for b in view.view["blocks"] if b["block_id"] == "project")
        assert project["element"]["initial_option"]["value"] == "ops"
        assert "ops (OPS)" in json.dumps(project)
        await bot.driver.submit_view(
            view.id,
            {
                "title": {"value": "Tune the alert"},
                "description": {"value": "Too noisy.\n\nFires nightly."},
                "project": {"value": "ops"},
                "labels": {"value": "alerts"},
                "assignee": {"value": "U0CAROL"},
            },
            user="U0ALICE",
        )
        await eventually(lambda: task_messages(bot), what="the task message")
        [issue] = issues(jira)
        assert issue.summary == "Tune the alert" and issue.assignee == CAROL.account_id
        assert adf_text(issue.description) == "Too noisy.\n\nFires nightly."


async def test_an_alert_and_a_message_become_jira_issues(redis_url: str) -> None:
    async with jira_bot(redis_url) as (bot, jira, _):
        parent = await fire_alert(bot)
        await bot.driver.click("Create task", user="U0BOB", channel=ALERTS)
        [view] = [v for v in bot.emulator.views.values() if v.is_open]
        await bot.driver.submit_view(view.id, {"project": {"value": "ops"}})
        replies = await eventually(lambda: bot.emulator.thread(ALERTS, parent.ts), what="link")
        [issue] = issues(jira)
        assert issue.summary.startswith("AL-1 HighLatency")
        assert "Firing: web-1" in adf_text(issue.description)
        assert f"/browse/{issue.key}" in replies[-1].text

        posted = await bot.deps.slack.post_message(DEPLOYS, "Disk at 91% on db-2")
        message = bot.emulator.message(DEPLOYS, posted.ts)
        assert message is not None
        await bot.driver.message_shortcut("task_from_message", message, user="U0BOB")
        [view] = [v for v in bot.emulator.views.values() if v.is_open]
        await bot.driver.submit_view(view.id)
        await eventually(lambda: len(issues(jira)) == 2, what="the second issue")
        assert any(i.summary == "Disk at 91% on db-2" for i in issues(jira))


async def test_jira_refusals_say_what_to_fix_within_seconds(redis_url: str) -> None:
    cfg = config(
        sec=Project(jira="SEC", channel=DEPLOYS),
        hr=Project(jira="HR", channel=GENERAL),
    )
    async with jira_bot(redis_url, cfg) as (bot, jira, _):
        cases = [
            ("Rotate keys project:sec", "“Team” (customfield_10010)"),
            ("Hire project:hr", "Create issues"),
        ]
        for typed, words in cases:
            before = len(ephemerals(bot))
            started = time.monotonic()
            await bot.driver.command("/task", typed, user="U0ALICE", channel=DEPLOYS)
            await eventually(lambda n=before: len(ephemerals(bot)) > n, within=30, what=typed)
            text = ephemerals(bot)[-1]
            assert words in text and "Jira" in text, text
            assert jira.token not in text and "Traceback" not in text
            assert time.monotonic() - started < 30
        jira.fail(503, times=1000)
        before = len(ephemerals(bot))
        await bot.driver.command("/task", "Down project:sec", user="U0ALICE", channel=DEPLOYS)
        await eventually(lambda: len(ephemerals(bot)) > before, within=30, what="Jira down")
        assert "Jira is unavailable" in ephemerals(bot)[-1]
        assert jira.issues == {}


async def test_rejected_credentials_name_the_settings(redis_url: str) -> None:
    async with jira_bot(redis_url, token="wrong-secret-123") as (bot, jira, _):
        await bot.driver.command("/task", "Anything", user="U0ALICE", channel=DEPLOYS)
        texts = await eventually(lambda: ephemerals(bot), within=30, what="the answer")
        assert "OPSLOOP_JIRA_TOKEN" in texts[-1] and "wrong-secret-123" not in texts[-1]
        assert jira.issues == {}


async def test_a_create_without_an_answer_is_told_then_found_and_filed_once(
    redis_url: str,
) -> None:
    quick = {"OPSLOOP_GITLAB_CALL_SECONDS": "2", "OPSLOOP_SETTLE_SECONDS": "7"}
    async with jira_bot(redis_url, **quick) as (bot, jira, _):
        # Jira files it, but answers after opsloop gave up: the job looks, never resends.
        jira.hold("/rest/api/3/issue", 3.0, method="POST", after_handling=True)
        first = await bot.driver.command("/task", "Only once", user="U0ALICE", channel=DEPLOYS)
        await bot.driver.retry(first, retry_num=1)
        [told] = await eventually(lambda: ephemerals(bot), within=15, what="the first word")
        assert "cannot tell yet whether the issue was filed" in told and "Jira" in told
        await eventually(lambda: task_messages(bot), within=25, what="the task, found")
        await asyncio.sleep(0.5)
        assert len(issues(jira)) == 1 and len(task_messages(bot)) == 1
        creates = [r for r in jira.requests if r.method == "POST" and r.path.endswith("/issue")]
        assert len(creates) == 1 and len(ephemerals(bot)) == 1


async def test_a_jira_project_without_jira_configured_says_what_to_set(redis_url: str) -> None:
    async with (
        running_gitlab() as gitlab,
        running_bot(redis_url, config=config(), **gitlab_env(gitlab)) as bot,
    ):
        await bot.driver.command("/task", "Anything", user="U0ALICE", channel=DEPLOYS)
        texts = await eventually(lambda: ephemerals(bot), within=30, what="the answer")
        assert "Jira is not configured" in texts[-1] and "OPSLOOP_JIRA_URL" in texts[-1]
        await bot.driver.command("/task", "Still GitLab's", user="U0ALICE", channel=GENERAL)
        await eventually(lambda: gitlab.issues("acme/web"), what="the GitLab project's task")
