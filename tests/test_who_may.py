"""Who may close a task and who may take back an acknowledgement, through signed clicks and
commands: the filer, the assignee, deployers and approvers close; whoever acknowledged, or an
approver, unacknowledges; anyone else is told who may, and nothing changes."""

from __future__ import annotations

import json
from typing import Any

from bot.config_file import OpsConfig, Project, Roles
from bot.sandbox.emulators.slack import Message
from integrations.docker.config import DockerService
from tests.alert_payloads import alert_config, sample
from tests.harness import BotUnderTest
from tests.test_alerts_webhook import INCIDENT, alert_bot, buttons, one_parent, post_hook, shown
from tests.test_tasks import GENERAL, audit_actions, ephemerals, task_bot
from tests.waiting import eventually

WEB = DockerService(deployer="docker", image="local/web", approvers=["U0BOB"])


def task_message(bot: BotUnderTest, reference: str) -> Message | None:
    """The channel message showing this task, while it still has its buttons."""
    for message in bot.emulator.messages(GENERAL):
        shown = json.dumps(message.blocks)
        if f"{reference}>" in shown and "Close" in shown:
            return message
    return None


def state(gitlab: Any, iid: int) -> str:
    return str(next(i for i in gitlab.issues("acme/web") if i["iid"] == iid)["state"])


async def closers(bot: BotUnderTest) -> list[str]:
    return sorted(e.who for e in await audit_actions(bot, "task.closed"))


async def _closers_are(bot: BotUnderTest, wanted: list[str]) -> bool:
    return await closers(bot) == wanted


async def test_only_the_filer_the_assignee_deployers_and_approvers_close_a_task(
    redis_url: str,
) -> None:
    cfg = OpsConfig(
        roles=Roles(deployers=["U0DAVE"], approvers=["S0SRE"]),  # Bob, through the SRE group
        projects={"web": Project(gitlab="acme/web", channel=GENERAL)},
    )
    async with task_bot(redis_url, cfg) as (bot, gitlab):
        for n, title in enumerate(("First", "Second", "Third"), start=1):
            await bot.driver.command("/task", title, user="U0ALICE", channel=GENERAL)
            await eventually(lambda n=n: task_message(bot, f"acme/web#{n}"), what=title)
        first = task_message(bot, "acme/web#1")
        assert first is not None

        # Carol did not file it, is not its assignee and holds no role.
        await bot.driver.click("Close", user="U0CAROL", message=first)
        [refusal] = await eventually(lambda: ephemerals(bot, "U0CAROL"), what="the refusal")
        assert "You may not close" in refusal and "acme/web#1" in refusal
        assert "whoever filed it (<@U0ALICE>)" in refusal
        assert "its assignee (nobody yet), deployers and approvers may" in refusal
        await bot.driver.command("/task", "close web#1", user="U0CAROL", channel=GENERAL)
        await eventually(lambda: len(ephemerals(bot, "U0CAROL")) == 2, what="the second refusal")
        assert "You may not close" in ephemerals(bot, "U0CAROL")[1]
        assert state(gitlab, 1) == "opened"
        assert task_message(bot, "acme/web#1") is not None  # still with its Close button
        assert await closers(bot) == []

        await bot.driver.click("Close", user="U0ALICE", message=first)  # the filer
        await eventually(lambda: state(gitlab, 1) == "closed", what="the filer's close")
        second = task_message(bot, "acme/web#2")
        assert second is not None
        await bot.driver.click("Close", user="U0BOB", message=second)  # an approver
        await eventually(lambda: state(gitlab, 2) == "closed", what="the approver's close")
        await bot.driver.command("/task", "close web#3", user="U0DAVE", channel=GENERAL)
        await eventually(lambda: state(gitlab, 3) == "closed", what="the deployer's close")
        # The audit entry follows GitLab's answer: wait for it rather than race it.
        everyone = ["U0ALICE", "U0BOB", "U0DAVE"]
        await eventually(lambda: _closers_are(bot, everyone), what="three task.closed entries")
        assert ephemerals(bot, "U0ALICE") == [] and ephemerals(bot, "U0BOB") == []


async def test_a_task_filed_outside_slack_is_closed_by_its_assignee_or_an_approver(
    redis_url: str,
) -> None:
    cfg = OpsConfig(
        projects={"web": Project(gitlab="acme/web", channel=GENERAL)},
        services={"web": WEB},  # Bob approves the web service's promotions
    )
    async with task_bot(redis_url, cfg) as (bot, gitlab):
        gitlab.add_issue("acme/web", "Filed in GitLab", assignees=["carol"], author="alice")
        gitlab.add_issue("acme/web", "Also filed in GitLab", author="alice")

        # Alice wrote it in GitLab, but the bot does not match people by who created things.
        await bot.driver.command("/task", "close web#1", user="U0ALICE", channel=GENERAL)
        [refusal] = await eventually(lambda: ephemerals(bot, "U0ALICE"), what="the refusal")
        assert "its assignee (@carol), deployers and approvers may" in refusal
        assert "filed outside Slack" in refusal
        assert state(gitlab, 1) == "opened"

        await bot.driver.command("/task", "close web#1", user="U0CAROL", channel=GENERAL)
        await eventually(lambda: state(gitlab, 1) == "closed", what="the assignee's close")
        await bot.driver.command("/task", "close web#2", user="U0BOB", channel=GENERAL)
        await eventually(lambda: state(gitlab, 2) == "closed", what="the approver's close")
        await eventually(lambda: _closers_are(bot, ["U0BOB", "U0CAROL"]), what="two closes")


async def test_only_whoever_acknowledged_or_an_approver_unacknowledges(redis_url: str) -> None:
    web = WEB.model_copy(update={"approvers": ["U0DAVE"]})
    cfg = alert_config().model_copy(
        update={"roles": Roles(approvers=["U0ALICE"]), "services": {"web": web}}
    )
    async with alert_bot(redis_url, cfg) as bot:
        await post_hook(bot, sample("alertmanager-firing.json"))
        parent = await one_parent(bot, INCIDENT)

        async def bob_acknowledges() -> None:
            await bot.driver.click("Acknowledge", user="U0BOB", message=parent)
            await eventually(lambda: "Acknowledged by <@U0BOB>" in shown(parent), what="ack")

        await bob_acknowledges()
        await bot.driver.click("Unacknowledge", user="U0CAROL", message=parent)
        [refusal] = await eventually(
            lambda: [e.text for e in bot.emulator.ephemerals(user="U0CAROL")], what="refusal"
        )
        assert refusal.endswith(
            "AL-1 was acknowledged by <@U0BOB>: only they or an approver may unacknowledge it."
        )
        assert "Acknowledged by <@U0BOB>" in shown(parent)
        assert "Unacknowledge" in buttons(parent)
        assert await audit_actions(bot, "alert.unacknowledged") == []

        # Bob himself, an approver by role, an approver of a service.
        for who in ("U0BOB", "U0ALICE", "U0DAVE"):
            await bot.driver.click("Unacknowledge", user=who, message=parent)
            await eventually(lambda: "Acknowledge" in buttons(parent), what=f"{who}'s unack")
            if who != "U0DAVE":
                await bob_acknowledges()
        entries = await audit_actions(bot, "alert.unacknowledged")
        assert sorted(e.who for e in entries) == ["U0ALICE", "U0BOB", "U0DAVE"]
