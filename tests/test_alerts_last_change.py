"""Alerts name the last change: an Alertmanager group on a service shows the service's latest
rollout with a Roll back button for deployers, and a rollout in progress links to the alert.

Through the real paths: webhook bodies posted to /hooks/alertmanager, signed commands and
clicks from the Slack emulator, a GitLab-deployed service in the GitLab emulator (fast steps).
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from bot.alerting import last_change
from bot.alerting.groups import AlertGroup, TrackedAlert
from bot.config_file import OpsConfig, Roles
from bot.sandbox.emulators.slack import Message
from tests.alert_payloads import alert, alert_config, notification
from tests.harness import BotUnderTest, gitlab_env, running_bot, running_gitlab
from tests.test_alerts_webhook import INCIDENT, audit_actions, parents, post_hook, shown
from tests.test_deploys import told
from tests.test_deploys_gitlab import JOBS
from tests.test_deploys_gitlab import config as gitlab_config
from tests.waiting import eventually

DEPLOYS = "C0DEPLOYS"
# Deployers Alice and Carol, approver Bob, and Dave who is neither.
ALICE, BOB, CAROL, DAVE = "U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"


def config() -> OpsConfig:
    """tests/test_deploys_gitlab.py's `api`, about the alerts labelled service=api."""
    api = gitlab_config().services["api"].model_copy(update={"alert_labels": {"service": "api"}})
    return OpsConfig(
        roles=Roles(deployers=[ALICE, CAROL], approvers=[BOB]),
        services={"api": api},
        alerts=alert_config().alerts,
    )


@asynccontextmanager
async def loop_bot(redis_url: str, **overrides: str) -> AsyncIterator[tuple[BotUnderTest, Any]]:
    async with running_gitlab() as gitlab:
        gitlab.pipeline_step_seconds = 0.05
        gitlab.set_pipeline_jobs("acme/api", JOBS)
        async with running_bot(
            redis_url,
            config=config(),
            OPSLOOP_DEPLOY_POLL_SECONDS="0.1",
            OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN="am-webhook-test-token",
            **gitlab_env(gitlab),
            **overrides,
        ) as bot:
            yield bot, gitlab


def rollout_message(bot: BotUnderTest, version: str) -> Message | None:
    found = [
        m for m in bot.emulator.messages(DEPLOYS) if m.text.startswith(f"Deploy api {version} ")
    ]
    return found[-1] if found else None


def rollout_shown(bot: BotUnderTest, version: str) -> str:
    m = rollout_message(bot, version)
    return shown(m) if m is not None else ""


def alert_message(bot: BotUnderTest) -> Message | None:
    found = parents(bot, INCIDENT)
    return found[-1] if found else None


def alert_shown(bot: BotUnderTest) -> str:
    m = alert_message(bot)
    return shown(m) if m is not None else ""


def roll_back_buttons(m: Message | None) -> list[str]:
    return [] if m is None else [t for t in _buttons(m.blocks) if t.startswith("Roll back")]


def _buttons(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = []
        if node.get("type") == "button":
            found.append(str(node["text"]["text"]))
        for value in node.values():
            found += _buttons(value)
        return found
    if isinstance(node, list):
        return [t for item in node for t in _buttons(item)]
    return []


async def deploy(bot: BotUnderTest, version: str, *, complete: bool = True) -> None:
    """`/deploy api <version>` by Alice; Bob approves the last step when `complete`."""
    await bot.driver.command("/deploy", f"api {version}", user=ALICE, channel=DEPLOYS)
    await eventually(
        lambda: "waiting for approval to go to 100%" in rollout_shown(bot, version),
        within=20,
        what=f"{version}'s canary",
    )
    if complete:
        message = rollout_message(bot, version)
        await bot.driver.click("Approve", user=BOB, message=message)
        await eventually(
            lambda: ": complete" in rollout_shown(bot, version), within=20, what="completion"
        )


async def fire(bot: BotUnderTest, *, resolved: bool = False, started: datetime) -> None:
    body = notification([alert("web-1", started=started, resolved=resolved)])
    status, text = await post_hook(bot, body)
    assert status == 202, text


async def fire_and_see(bot: BotUnderTest, words: str) -> str:
    """An alert on api fires now; what its message shows once it says `words`."""
    await fire(bot, started=datetime.now(UTC))
    text: str = await eventually(
        lambda: words in alert_shown(bot) and alert_shown(bot), within=15, what=words
    )
    return text


async def settle() -> None:
    """Time for the worker to do what it should not (a second rollback, a second reply); the
    queue never drains here: each approval request keeps its expiry job waiting."""
    await asyncio.sleep(1.5)


def rollback_plays(gitlab: Any) -> int:
    return sum(
        1
        for p in gitlab.ci.pipelines.values()
        for j in p.jobs
        if j.spec.name == "rollback" and j.status == "success"
    )


async def test_an_alert_after_a_deploy_names_it_and_only_a_deployer_rolls_back_once(
    redis_url: str,
) -> None:
    async with loop_bot(redis_url) as (bot, gitlab):
        await deploy(bot, "1.4.1")
        await deploy(bot, "1.4.2")
        text = await fire_and_see(bot, "Last change")
        assert "api `1.4.2` (D-2) by <@U0ALICE>, approved by <@U0BOB>, completed" in text, text
        assert "before the alert" in text
        assert roll_back_buttons(alert_message(bot)) == ["Roll back api"]

        # Dave is no deployer: told who may, and nothing changes.
        await bot.driver.click("Roll back api", user=DAVE, channel=INCIDENT)
        await told(bot, DAVE, "Only deployers (`roles.deployers`) may roll back")
        await settle()
        r = await bot.deps.store.deploys.load("api")
        assert r is not None and r.state == "complete"
        assert not await audit_actions(bot, "deploy.rollback_requested")

        # Alice clicks, Slack delivers her click again, and Carol clicks at the same moment.
        old = copy.deepcopy(alert_message(bot))
        assert old is not None
        first = await bot.driver.click("Roll back api", user=ALICE, message=old)
        await asyncio.gather(
            bot.driver.retry(first),
            bot.driver.click("Roll back api", user=CAROL, message=old),
        )
        await eventually(
            lambda: "rolled back" in rollout_shown(bot, "1.4.2"), within=20, what="the rollback"
        )
        await settle()
        assert rollback_plays(gitlab) == 1
        [asked] = await audit_actions(bot, "deploy.rollback_requested")
        assert asked.who in (ALICE, CAROL) and "D-2" in asked.subject
        who, other = asked.who, CAROL if asked.who == ALICE else ALICE
        await told(bot, other, f"<@{who}> already rolled api back")

        # The alert's thread says who rolled back what, once; its message follows the rollout.
        parent = alert_message(bot)
        assert parent is not None
        replies = [m.text for m in bot.emulator.thread(INCIDENT, parent.ts) if "rolling" in m.text]
        assert len(replies) == 1, replies
        assert f"<@{who}> is rolling api back from `1.4.2` to `1.4.1` (D-2)" in replies[0]
        await eventually(
            lambda: f"*rolled back* by <@{who}> to `1.4.1`" in alert_shown(bot),
            within=15,
            what="the alert message to follow the rollback",
        )
        assert roll_back_buttons(alert_message(bot)) == []
        assert len(parents(bot, INCIDENT)) == 1, "never a second message"


async def test_a_roll_back_click_on_an_older_rollout_is_refused_with_where_things_stand(
    redis_url: str,
) -> None:
    async with loop_bot(redis_url) as (bot, _gitlab):
        await deploy(bot, "1.4.1")
        await deploy(bot, "1.4.2")
        await fire(bot, started=datetime.now(UTC))
        await eventually(
            lambda: "(D-2)" in alert_shown(bot) and roll_back_buttons(alert_message(bot)),
            within=15,
            what="D-2 on the alert",
        )
        stale = copy.deepcopy(alert_message(bot))
        assert stale is not None
        await deploy(bot, "1.4.3", complete=False)  # D-3 starts: the alert message follows
        await eventually(
            lambda: "(D-3)" in alert_shown(bot) and "*in progress*" in alert_shown(bot),
            within=15,
            what="the alert message to show D-3",
        )
        await bot.driver.click("Roll back api", user=ALICE, message=stale)
        said = await told(bot, ALICE, "has moved on to D-3")
        assert "1.4.3" in said, said
        await settle()
        r = await bot.deps.store.deploys.load("api")
        assert r is not None and r.id == "D-3" and r.state == "awaiting"
        assert not await audit_actions(bot, "deploy.rollback_requested")


async def test_an_alert_during_a_rollout_is_linked_both_ways_and_both_follow(
    redis_url: str,
) -> None:
    async with loop_bot(redis_url) as (bot, _gitlab):
        await deploy(bot, "1.4.1")
        await deploy(bot, "1.4.2", complete=False)
        text = await fire_and_see(bot, "*in progress*")
        assert "step 1 of 2, awaiting approval" in text, text
        assert "not approved yet" in text
        assert roll_back_buttons(alert_message(bot)) == ["Roll back api"]

        # The approval message links to the alert's message, and says it is unacknowledged.
        parent = alert_message(bot)
        assert parent is not None
        link = f"/archives/{INCIDENT}/p{parent.ts.replace('.', '')}|AL-1>"
        await eventually(
            lambda: link in rollout_shown(bot, "1.4.2"), within=15, what="the link to AL-1"
        )
        assert "AL-1> HighLatency (firing, unacknowledged)" in rollout_shown(bot, "1.4.2")

        # Acknowledged: the approval message says by whom (and approval is no longer blocked).
        await bot.driver.click("Acknowledge", user=BOB, message=parent)
        await eventually(
            lambda: "acknowledged by <@U0BOB>" in rollout_shown(bot, "1.4.2"),
            within=15,
            what="the acknowledgement on the rollout",
        )
        await bot.driver.click("Approve", user=BOB, message=rollout_message(bot, "1.4.2"))
        await eventually(
            lambda: re.search(r", completed \S+ after the alert started", alert_shown(bot)),
            within=20,
            what="the alert message to follow the completion",
        )
        assert "approved by <@U0BOB>" in alert_shown(bot)

        # Resolved: the link leaves the approval message; still one message each.
        await fire(bot, started=datetime.now(UTC), resolved=True)
        await eventually(
            lambda: "AL-1" not in rollout_shown(bot, "1.4.2"), within=15, what="the link to go"
        )
        assert "Last change" in alert_shown(bot), "a resolved alert keeps what it showed"
        assert roll_back_buttons(alert_message(bot)) == []
        assert len(parents(bot, INCIDENT)) == 1
        assert len([m for m in bot.emulator.messages(DEPLOYS) if "1.4.2" in m.text]) == 1


async def test_an_alert_on_a_service_never_deployed_says_nothing_of_changes(
    redis_url: str,
) -> None:
    async with loop_bot(redis_url) as (bot, _gitlab):
        await fire(bot, started=datetime.now(UTC))
        await eventually(lambda: alert_message(bot), within=15, what="the alert message")
        await settle()
        assert "Last change" not in alert_shown(bot)
        assert roll_back_buttons(alert_message(bot)) == []
        assert "HighLatency" in json.dumps(alert_message(bot).blocks)  # type: ignore[union-attr]


async def test_groups_inside_a_storm_get_no_message_of_their_own_when_a_rollout_moves(
    redis_url: str,
) -> None:
    async with loop_bot(redis_url, OPSLOOP_STORM_THRESHOLD="1") as (bot, _gitlab):
        await deploy(bot, "1.4.1")
        now = datetime.now(UTC)
        for name in ("HighLatency", "HighErrors", "Saturation"):
            body = notification([alert("web-1", name=name, started=now)], name=name)
            status, text = await post_hook(bot, body)
            assert status == 202, text
        summary = await eventually(
            lambda: [m for m in parents(bot, INCIDENT) if "Alert storm" in m.text],
            within=15,
            what="the storm summary",
        )
        await deploy(bot, "1.4.2", complete=False)  # firing alerts block its approval
        await eventually(
            lambda: "(D-2)" in own_message(bot),
            within=15,
            what="the group with a message of its own to follow",
        )
        await bot.driver.command("/deploy", "rollback api", user=ALICE, channel=DEPLOYS)
        await eventually(
            lambda: "*rolled back*" in own_message(bot), within=20, what="the rollback"
        )
        await settle()
        shown_now = [m.text for m in parents(bot, INCIDENT)]
        assert len(shown_now) == 2, shown_now  # AL-1's message and the storm's summary
        assert summary[0].ts in [m.ts for m in parents(bot, INCIDENT)]


def own_message(bot: BotUnderTest) -> str:
    """The one group of the storm test that has a message (whichever was first)."""
    found = [m for m in parents(bot, INCIDENT) if "Alert storm" not in m.text]
    return shown(found[-1]) if found else ""


def test_a_group_about_many_services_names_the_first_three() -> None:
    """The bound, on the pure rule: a group carrying labels of five services shows three."""
    group = AlertGroup(ref="AL-9", group_key="k", first_seen=0.0)
    labels = {"team": "shop", "alertname": "HighLatency"}
    group.alerts["fp"] = TrackedAlert(
        "fp", "firing", labels, {}, "2026-01-01T00:00:00+00:00", None, ""
    )
    services = {f"s{i}": {"team": "shop"} for i in range(5)}
    services["other"] = {"team": "billing"}
    services["none"] = {}
    assert last_change.matching_services(group, services) == ["s0", "s1", "s2"]
