"""Flagger's webhook gate end to end: Flagger's calls in over HTTP (`POST /hooks/flagger`, the
body Flagger's `CallWebhook` and `CallEventWebhook` send), the bot's app and worker on a real
Redis, the approval message and signed clicks through the Slack emulator."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config_file import AlertRoute, Alerts, OpsConfig, Roles
from bot.deploys.flagger_gate import FLAGGER_JOB
from integrations.flagger.config import FlaggerService
from tests.alert_payloads import TOKEN as AM_TOKEN
from tests.alert_payloads import alert, notification
from tests.harness import BotUnderTest, running_bot, running_emulator
from tests.servers import own_redis
from tests.test_alerts_webhook import post_hook
from tests.test_deploys import _acked
from tests.waiting import eventually

TOKEN = "flagger-webhook-token"
CHANNEL = "C0DEPLOYS"
SERVICE = "checkout"


def config(**overrides: Any) -> OpsConfig:
    checkout: dict[str, Any] = {
        "deployer": "flagger",
        "namespace": "shop",
        "canary": "checkout",
        "approvals": 1,
        "channel": CHANNEL,
        "alert_labels": {"service": "checkout"},
    }
    checkout.update(overrides)
    return OpsConfig(
        # Carol approves through the S0ONCALL user group; Dave is neither deployer nor approver.
        roles=Roles(deployers=["U0ALICE"], approvers=["U0ALICE", "U0BOB", "S0ONCALL"]),
        services={SERVICE: FlaggerService.model_validate(checkout)},
        alerts=Alerts(routes=[AlertRoute(channel="C0ALERTS")]),
    )


@asynccontextmanager
async def gate_bot(
    redis_url: str, cfg: OpsConfig | None = None, **env: Any
) -> AsyncIterator[BotUnderTest]:
    env.setdefault("OPSLOOP_FLAGGER_WEBHOOK_TOKEN", TOKEN)
    async with running_bot(redis_url, config=cfg or config(), **env) as bot:
        yield bot


def flagger_body(checksum: str = "5d8f7c9b4", phase: str = "Waiting", **metadata: str) -> Any:
    """What Flagger posts (`CanaryWebhookPayload`), with the webhook's metadata."""
    return {
        "name": "checkout",
        "namespace": "shop",
        "phase": phase,
        "checksum": checksum,
        "metadata": {"token": TOKEN, **metadata},
    }


async def post(bot: BotUnderTest, hook: str | None, body: Any) -> tuple[int, str]:
    """POST /hooks/flagger?type=<hook>; `body` as JSON, or bytes as they are."""
    url = bot.base_url + "/hooks/flagger" + (f"?type={hook}" if hook else "")
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=data, headers={"Content-Type": "application/json"}) as r,
    ):
        return r.status, await r.text()


async def gate(
    bot: BotUnderTest, hook: str = "confirm-rollout", checksum: str = "5d8f7c9b4"
) -> int:
    status, _ = await post(bot, hook, flagger_body(checksum))
    return status


async def event(bot: BotUnderTest, phase: str, message: str, checksum: str = "5d8f7c9b4") -> None:
    body = flagger_body(checksum, phase, eventMessage=message, eventType="Normal")
    assert (await post(bot, "event", body))[0] == 200


def requests(bot: BotUnderTest) -> list[Any]:
    return [m for m in bot.emulator.messages(CHANNEL) if m.text.startswith(f"Deploy {SERVICE} ")]


def shown(message: Any) -> str:
    return message.text + json.dumps(message.blocks)


def newest(bot: BotUnderTest) -> Any:
    return requests(bot)[-1]


async def says(bot: BotUnderTest, words: str, within: float = 15) -> Any:
    await eventually(
        lambda: requests(bot) and words in shown(newest(bot)),
        within=within,
        what=f"the request's message to say {words!r}",
    )
    return newest(bot)


async def told(bot: BotUnderTest, user: str, words: str) -> None:
    await eventually(
        lambda: any(words in e.text for e in bot.emulator.ephemerals(user=user)),
        what=f"{user} to be told {words!r}",
    )


def thread(bot: BotUnderTest, message: Any) -> list[str]:
    return [r.text for r in bot.emulator.thread(CHANNEL, message.ts)]


def posts(bot: BotUnderTest) -> int:
    return len([c for c in bot.emulator.calls if c.method == "chat.postMessage"])


def with_approve(message: Any) -> Any:
    """The message as someone saw it before it lost its Approve button (an old copy)."""
    for version in reversed(message.edits):
        if "deploy_approve" in json.dumps(version.blocks):
            return dataclasses.replace(message, blocks=version.blocks)
    raise AssertionError("the message never had an Approve button")


async def actions(bot: BotUnderTest) -> list[str]:
    return [e.action for e in reversed(await bot.deps.store.audit_recent(200))]


async def opened(bot: BotUnderTest, checksum: str = "5d8f7c9b4") -> Any:
    """Flagger's first confirm-rollout call for `checksum`: 403, and the approval message."""
    assert await gate(bot, checksum=checksum) == 403
    return await says(bot, f"`{checksum}`")


# -- the route's refusals ---------------------------------------------------------------------


async def test_the_route_is_off_without_a_token_and_refuses_a_wrong_one(redis_url: str) -> None:
    # No worker: nothing may be queued for one, as the queue's depth shows.
    async with gate_bot(redis_url, OPSLOOP_FLAGGER_WEBHOOK_TOKEN="", worker=False) as bot:
        status, text = await post(bot, "confirm-rollout", flagger_body())
        assert status == 404 and "OPSLOOP_FLAGGER_WEBHOOK_TOKEN is unset" in text
    async with gate_bot(redis_url, worker=False) as bot:
        wrong = flagger_body()
        wrong["metadata"]["token"] = "guess"
        assert (await post(bot, "confirm-rollout", wrong))[0] == 401
        missing = flagger_body()
        del missing["metadata"]
        status, text = await post(bot, "confirm-rollout", missing)
        assert status == 401 and "metadata.token" in text
        assert TOKEN not in text
        assert await bot.deps.store.queue_depth() == 0 and await actions(bot) == []


@pytest.mark.parametrize(
    ("hook", "body", "reason"),
    [
        ("confirm-rollout", b"{not json", "the body is not JSON"),
        ("confirm-rollout", b"\xff\xfe", "the body is not JSON"),
        ("confirm-rollout", b"[1, 2]", "must be a JSON object"),
        ("confirm-rollout", {**flagger_body(), "metadata": {"token": TOKEN, "n": 5}}, "metadata"),
        ("confirm-rollout", {**flagger_body(), "metadata": "token"}, "metadata"),
        ("confirm-rollout", {**flagger_body(), "name": None}, "name: is missing"),
        ("confirm-rollout", {**flagger_body(), "namespace": 7}, "namespace: must be a string"),
        ("confirm-rollout", {**flagger_body(), "checksum": ""}, "checksum: must not be empty"),
        ("confirm-rollout", {**flagger_body(), "phase": ["Waiting"]}, "phase: must be a string"),
        ("confirm-everything", flagger_body(), "unknown webhook type 'confirm-everything'"),
        ("pre-rollout", flagger_body(), "unknown webhook type 'pre-rollout'"),
        (None, flagger_body(), "?type=<webhook type>"),
        ("confirm-rollout", b" " * (65 * 1024), "over 64 KiB"),
    ],
)
async def test_bodies_flagger_would_not_send_get_400_with_the_reason(
    redis_url: str, hook: str | None, body: Any, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with gate_bot(redis_url, worker=False) as bot:
        status, text = await post(bot, hook, body)
        assert status == 400 and text.startswith("Invalid payload: ") and reason in text, text
        assert TOKEN not in text
        await asyncio.sleep(0.2)
        assert requests(bot) == [] and await bot.deps.store.queue_depth() == 0
    assert "Traceback" not in caplog.text


async def test_the_type_may_come_from_the_metadata_and_an_unknown_canary_is_named(
    redis_url: str,
) -> None:
    async with gate_bot(redis_url) as bot:
        status, _ = await post(bot, None, flagger_body(type="confirm-promotion"))
        assert status == 403
        message = await says(bot, "confirm-promotion")
        assert "Approve" in shown(message)
        stranger = {**flagger_body(), "name": "cart"}
        status, text = await post(bot, "confirm-rollout", stranger)
        assert status == 404
        assert "Canary shop/cart" in text and "canary: cart" in text


# -- one request per checksum -------------------------------------------------------------------


async def test_the_first_call_asks_once_and_later_calls_are_answered_from_redis(
    redis_url: str,
) -> None:
    async with gate_bot(redis_url) as bot:
        message = await opened(bot)
        text = shown(message)
        assert "Approve" in text and "Reject" in text
        assert "shop/checkout" in text and "confirm-rollout" in text and "0 of 1" in text
        assert any("Flagger asks" in r for r in thread(bot, message))
        sent = posts(bot)
        for hook in ("confirm-rollout", "confirm-traffic-increase", "confirm-promotion"):
            status, text = await post(bot, hook, flagger_body())
            assert (status, "Waiting for approval in Slack") == (403, text[:29])
        assert (await post(bot, "rollback", flagger_body()))[0] == 403
        await asyncio.sleep(0.5)
        assert len(requests(bot)) == 1 and posts(bot) == sent, "nothing new is posted"
        assert (await actions(bot)).count("deploy.requested") == 1


async def test_concurrent_first_calls_open_one_request(redis_url: str) -> None:
    async with gate_bot(redis_url) as bot:
        started = time.monotonic()
        statuses = await asyncio.gather(*(gate(bot) for _ in range(12)))
        # Well inside Flagger's 10 s webhook time-out: Slack is not waited for.
        assert time.monotonic() - started < 2.0
        assert set(statuses) == {403}
        await says(bot, "Approve")
        await asyncio.sleep(0.5)
        assert len(requests(bot)) == 1
        assert (await actions(bot)).count("deploy.requested") == 1


# -- the approval rules -------------------------------------------------------------------------


async def test_approvals_need_distinct_approvers_and_open_the_gate_for_that_checksum_only(
    redis_url: str,
) -> None:
    async with gate_bot(redis_url, config(approvals=2)) as bot:
        first = await opened(bot)
        await bot.driver.click("Approve", user="U0DAVE", channel=CHANNEL)
        await told(bot, "U0DAVE", "Only approvers of checkout may approve")
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(bot, "1 of 2")
        assert await gate(bot) == 403, "one approval of two opens nothing"
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await told(bot, "U0BOB", "You already approved")
        assert await gate(bot) == 403

        await bot.driver.click("Approve", user="U0CAROL", channel=CHANNEL)  # via S0ONCALL
        await says(bot, "the gate is open")
        for hook in ("confirm-rollout", "confirm-traffic-increase", "confirm-promotion"):
            assert await gate(bot, hook) == 200
        assert (await post(bot, "rollback", flagger_body()))[0] == 403
        assert "Approve" not in shown(newest(bot))

        # Flagger's analysis carries a new checksum: a new request, the approval not carried.
        assert await gate(bot, "confirm-promotion", checksum="77aa01") == 403
        await eventually(lambda: len(requests(bot)) == 2, what="a second request")
        await says(bot, "`77aa01`")
        assert "Approve" in shown(newest(bot)) and "0 of 2" in shown(newest(bot))
        await eventually(
            lambda: "moved on" in shown(requests(bot)[0]), what="the first to say Flagger moved on"
        )
        assert "Approve" not in shown(requests(bot)[0])
        assert await gate(bot, "confirm-promotion", checksum="77aa01") == 403
        assert requests(bot)[0].ts == first.ts
        log = await actions(bot)
        assert log.count("deploy.approved") == 2 and log.count("deploy.requested") == 2


async def test_a_new_checksum_before_approval_closes_the_old_request(redis_url: str) -> None:
    async with gate_bot(redis_url) as bot:
        old = await opened(bot)
        assert await gate(bot, checksum="99ee02") == 403
        await eventually(lambda: len(requests(bot)) == 2, what="the new revision's request")
        closed = await eventually(
            lambda: "moved on" in shown(requests(bot)[0]) and requests(bot)[0],
            what="the old request closed",
        )
        assert "Approve" not in shown(closed) and "Reject" not in shown(closed)
        await eventually(lambda: any("moved on" in r for r in thread(bot, old)), what="reply")
        # A click on the old message as it was before is refused.
        await bot.driver.click("Approve", user="U0BOB", message=with_approve(closed))
        await told(bot, "U0BOB", "This request is over")
        assert await gate(bot, checksum="5d8f7c9b4") == 403
        assert "deploy.superseded" in await actions(bot)


async def test_an_expired_request_keeps_the_gate_shut_until_a_deployer_asks_again(
    redis_url: str,
) -> None:
    async with gate_bot(redis_url, config(approval_timeout="2s")) as bot:
        await opened(bot)
        expired = await says(bot, "expired")
        assert "Approve" not in shown(expired)
        await bot.driver.click("Approve", user="U0BOB", message=with_approve(expired))
        await told(bot, "U0BOB", "expired")
        assert await gate(bot) == 403
        status, text = await post(bot, "confirm-rollout", flagger_body())
        assert status == 403 and "/deploy promote checkout" in text

        await bot.driver.command("/deploy", "promote checkout", user="U0ALICE", channel=CHANNEL)
        await says(bot, "Approve")
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(bot, "the gate is open")
        assert await gate(bot) == 200
        assert "deploy.expired" in await actions(bot)


async def test_a_firing_unacknowledged_alert_blocks_approval(redis_url: str) -> None:
    env = {"OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN": AM_TOKEN}
    async with gate_bot(redis_url, **env) as bot:
        await opened(bot)
        body = notification([alert("c-1", name="HighErrorRate", extra={"service": "checkout"})])
        assert (await post_hook(bot, body))[0] < 300
        await eventually(lambda: bot.emulator.messages("C0ALERTS"), what="the alert's thread")
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await told(bot, "U0BOB", "AL-1")
        assert await gate(bot) == 403

        await bot.driver.command("/ack", "AL-1 looking", user="U0CAROL")
        await eventually(_acked(bot, "AL-1"), what="AL-1 acknowledged")
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(bot, "the gate is open")
        assert await gate(bot) == 200


async def test_reject_makes_the_rollback_hook_answer_200_and_keeps_the_gate_shut(
    redis_url: str,
) -> None:
    async with gate_bot(redis_url) as bot:
        message = await opened(bot)
        await bot.driver.click("Reject", user="U0DAVE", channel=CHANNEL)
        await told(bot, "U0DAVE", "Only approvers of checkout")
        assert (await post(bot, "rollback", flagger_body()))[0] == 403

        await bot.driver.click("Reject", user="U0BOB", channel=CHANNEL)
        await says(bot, "rejected")
        status, text = await post(bot, "rollback", flagger_body())
        assert status == 200 and "U0BOB" in text
        assert await gate(bot) == 403
        assert "Approve" not in shown(newest(bot))
        assert any("Rejected by <@U0BOB>" in r for r in thread(bot, message))
        assert "deploy.rejected" in await actions(bot)


async def test_two_approve_clicks_at_once_approve_once(redis_url: str) -> None:
    async with gate_bot(redis_url) as bot:
        message = await opened(bot)
        await asyncio.gather(
            bot.driver.click("Approve", user="U0BOB", message=message),
            bot.driver.click("Approve", user="U0CAROL", message=message),
        )
        await says(bot, "the gate is open")
        await asyncio.sleep(0.5)
        assert (await actions(bot)).count("deploy.approved") == 1
        assert await gate(bot) == 200


# -- Flagger's events -------------------------------------------------------------------------


async def test_events_update_the_request_in_place(redis_url: str) -> None:
    async with gate_bot(redis_url) as bot:
        message = await opened(bot)
        await event(bot, "Waiting", "Halt checkout.shop advancement waiting for approval gate")
        await says(bot, "Halt checkout.shop advancement")
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(bot, "the gate is open")
        # The analysis runs under the next checksum; its events still concern this request.
        await event(bot, "Progressing", "Advance checkout.shop canary weight 10", "8c1e")
        await says(bot, "canary weight 10")
        await event(bot, "Promoting", "Copying checkout.shop template spec to primary", "8c1e")
        await says(bot, "Promoting")
        await event(bot, "Succeeded", "Promotion completed! Scaling down checkout.shop", "8c1e")
        final = await says(bot, "Flagger promoted the canary")
        assert final.ts == message.ts and len(requests(bot)) == 1, "one message, in place"
        await eventually(
            lambda: any("Flagger promoted" in r for r in thread(bot, message)), what="reply"
        )
        assert "deploy.canary_succeeded" in await actions(bot)
        # After Succeeded, an event of another revision concerns nothing open: answered 200.
        await event(bot, "Progressing", "New revision detected!", "ffff")
        await asyncio.sleep(0.3)
        assert "New revision" not in shown(newest(bot)) and len(requests(bot)) == 1


async def test_a_canary_flagger_fails_while_waiting_is_no_longer_asked_about(
    redis_url: str,
) -> None:
    async with gate_bot(redis_url) as bot:
        message = await opened(bot)
        await event(bot, "Failed", "Canary failed! Scaling down checkout.shop")
        closed = await says(bot, "ended the canary (Failed)")
        assert "Approve" not in shown(closed) and "Reject" not in shown(closed)
        await eventually(
            lambda: any("Flagger failed the canary" in r for r in thread(bot, message)),
            what="the thread reply",
        )
        assert "deploy.canary_failed" in await actions(bot)
        assert len(requests(bot)) == 1


async def test_an_event_before_any_request_posts_nothing(redis_url: str) -> None:
    async with gate_bot(redis_url) as bot:
        await event(bot, "Initialized", "Initialization done! checkout.shop")
        await asyncio.sleep(0.3)
        assert bot.emulator.messages(CHANNEL) == []


# -- restarts and outages -----------------------------------------------------------------------


async def test_a_worker_stopped_while_posting_leaves_one_message(redis_url: str) -> None:
    async with running_emulator() as slack:
        slack.delays["chat.postMessage"] = 60  # Slack holds the post; the worker stops first
        async with gate_bot(redis_url, emulator=slack) as first:
            assert await gate(first) == 403
            await eventually(_intended(first), what="the post under way")
            await asyncio.sleep(0.3)  # the post is in Slack's hands
        slack.delays.clear()  # the held post lands after its worker is gone
        await eventually(lambda: slack.messages(CHANNEL), what="the held post to land")
        async with gate_bot(redis_url, emulator=slack) as second:
            r = await eventually(_posted(second), within=40, what="the message recorded")
            assert [m.ts for m in requests(second)] == [r.ts]
            # The job run once more, as after a crash: still one message.
            await second.deps.queue.enqueue(
                FLAGGER_JOB, {"service": SERVICE, "rollout": r.id}, job_id="again"
            )
            await asyncio.sleep(1.0)
            assert len(requests(second)) == 1
            assert await gate(second) == 403
            await second.driver.click("Approve", user="U0BOB", channel=CHANNEL)
            await says(second, "the gate is open")
            assert await gate(second) == 200


def _intended(bot: BotUnderTest) -> Any:
    """Whether the job has recorded its intent to post (bot/once.py): the post is on its way."""

    async def check() -> bool:
        r = await bot.deps.store.deploys.load(SERVICE)
        if r is None:
            return False
        entry = await bot.deps.store.effects.load(f"{FLAGGER_JOB}:{r.id}:message")
        return entry.intent_at is not None

    return check


def _posted(bot: BotUnderTest) -> Any:
    async def check() -> Any:
        r = await bot.deps.store.deploys.load(SERVICE)
        return r if r is not None and r.ts is not None else None

    return check


async def test_with_redis_away_a_gate_answers_403_and_an_event_200(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with own_redis(tmp_path) as server, gate_bot(server.url, worker=False) as bot:
        assert await gate(bot) == 403
        server.stop()
        for hook in ("confirm-rollout", "confirm-promotion", "rollback"):
            status, text = await post(bot, hook, flagger_body())
            assert status == 403 and "Not approved" in text
        status, _ = await post(bot, "event", flagger_body(eventMessage="x", eventType="Normal"))
        assert status == 200
    assert "Traceback" not in caplog.text
    assert TOKEN not in caplog.text
