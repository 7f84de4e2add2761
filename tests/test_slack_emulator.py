"""The Slack emulator, through the real slack_sdk clients and a tiny signed-request bot."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.sandbox.emulators.slack import SlackDriver, SlackEmulator
from tests.waiting import eventually

Answer = tuple[int, str]


class FakeClock:
    """A clock the test moves by hand, so expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TinyBot:
    """A stand-in for the bot: verifies Slack's signature like Bolt and answers as told."""

    def __init__(self, signing_secret: str) -> None:
        self.verifier = SignatureVerifier(signing_secret)
        self.received: list[dict[str, Any]] = []
        self.answer: Callable[[dict[str, Any]], Answer] = lambda _: (200, "")

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self.verifier.is_valid_request(body, dict(request.headers)):
            return web.Response(status=401, text="invalid signature")
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        payload = json.loads(form["payload"]) if "payload" in form else None
        seen = {"form": form, "payload": payload, "headers": dict(request.headers), "raw": body}
        self.received.append(seen)
        status, text = self.answer(seen)
        content_type = "application/json" if text.startswith("{") else "text/plain"
        return web.Response(status=status, text=text, content_type=content_type)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emu(clock: FakeClock) -> AsyncIterator[SlackEmulator]:
    emulator = SlackEmulator(channel_burst=10, approvers={"S0SRE"}, clock=clock)
    async with emulator.serve():
        yield emulator


@pytest.fixture
def client(emu: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)


@pytest.fixture
async def bot(emu: SlackEmulator) -> AsyncIterator[TinyBot]:
    tiny = TinyBot(emu.signing_secret)
    app = web.Application()
    app.router.add_post("/slack/events", tiny.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    emu.bot_events_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    yield tiny
    await runner.cleanup()


@pytest.fixture
async def driver(emu: SlackEmulator, bot: TinyBot) -> AsyncIterator[SlackDriver]:
    async with SlackDriver(emu) as d:
        yield d


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def buttons(*labels: str, block_id: str = "approval") -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": block_id,
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": label},
                "action_id": label.lower(),
                "value": f"{label.lower()}-value",
            }
            for label in labels
        ],
    }


async def api_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


# -- Web API: auth and arguments -------------------------------------------------------------


async def test_missing_token_is_not_authed(emu: SlackEmulator) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(emu.api_url + "auth.test") as resp,
    ):
        assert resp.status == 200
        assert await resp.json() == {"ok": False, "error": "not_authed"}


async def test_wrong_token_is_invalid_auth(emu: SlackEmulator) -> None:
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=emu.api_url)
    error = await api_error(wrong.auth_test())
    assert error.response["error"] == "invalid_auth"


async def test_auth_test_names_the_bot(client: AsyncWebClient, emu: SlackEmulator) -> None:
    resp = await client.auth_test()
    assert (resp["user_id"], resp["bot_id"], resp["team_id"]) == (
        "U0OPSLOOP",
        emu.bot_id,
        emu.team_id,
    )


async def test_token_as_form_field_is_accepted(emu: SlackEmulator) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            emu.api_url + "chat.postMessage",
            data={"token": emu.bot_token, "channel": "C0GENERAL", "text": "hi"},
        ) as resp,
    ):
        assert (await resp.json())["ok"] is True


async def test_unknown_method(client: AsyncWebClient) -> None:
    error = await api_error(client.api_call("chat.teleport"))
    assert error.response["error"] == "unknown_method"


async def test_post_errors(client: AsyncWebClient, emu: SlackEmulator) -> None:
    cases = [
        (client.chat_postMessage(channel="C0NOPE", text="x"), "channel_not_found"),
        (
            client.chat_postMessage(channel="C0GENERAL", text="x", thread_ts="1.2"),
            "thread_not_found",
        ),
        (client.chat_postMessage(channel="C0ALERTS", text="x" * 40_001), "msg_too_long"),
        (client.api_call("chat.postMessage", json={"channel": "C0DEPLOYS"}), "no_text"),
    ]
    for call, expected in cases:
        assert (await api_error(call)).response["error"] == expected
    assert [c.error for c in emu.calls] == [e for _, e in cases]


# -- Block Kit ------------------------------------------------------------------------------


def _button(**overrides: Any) -> dict[str, Any]:
    element = {"type": "button", "text": {"type": "plain_text", "text": "Go"}, "action_id": "go"}
    element.update(overrides)
    return {"type": "actions", "elements": [element]}


BAD_BLOCKS = {
    "51 blocks": [section("x")] * 51,
    "3001-char section": [section("x" * 3001)],
    "151-char header": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
    "mrkdwn header": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}],
    "2001-char button value": [_button(value="v" * 2001)],
    "256-char action_id": [_button(action_id="a" * 256)],
    "76-char button text": [_button(text={"type": "plain_text", "text": "t" * 76})],
    "button without action_id": [_button(action_id=None)],
    "11 fields": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
    "2001-char field": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
    "section without text": [{"type": "section"}],
    "unknown block type": [{"type": "carousel"}],
    "256-char block_id": [{"type": "divider", "block_id": "b" * 256}],
    "duplicate block_id": [
        {"type": "divider", "block_id": "d"},
        {"type": "divider", "block_id": "d"},
    ],
    "duplicate action_id": [buttons("Same", "Same")],
    "26 actions": [{"type": "actions", "elements": _button()["elements"] * 26}],
    "text object without type": [{"type": "section", "text": {"text": "no type"}}],
}


@pytest.mark.parametrize("blocks", BAD_BLOCKS.values(), ids=BAD_BLOCKS.keys())
async def test_block_kit_limits_are_refused(client: AsyncWebClient, blocks: list[Any]) -> None:
    error = await api_error(client.chat_postMessage(channel="C0WEB", text="t", blocks=blocks))
    assert error.response["error"] == "invalid_blocks"
    assert error.response["errors"], "each problem is named"
    assert all(m.startswith("[ERROR] ") for m in error.response["response_metadata"]["messages"])


async def test_block_kit_problem_names_its_place(client: AsyncWebClient) -> None:
    error = await api_error(
        client.chat_postMessage(channel="C0WEB", text="t", blocks=[section("x" * 3001)])
    )
    assert error.response["errors"] == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]


async def test_valid_blocks_at_the_limits_are_accepted(
    client: AsyncWebClient, emu: SlackEmulator
) -> None:
    blocks = [section("x" * 3000)] * 48 + [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        _button(value="v" * 2000, action_id="a" * 255),
    ]
    resp = await client.chat_postMessage(channel="C0WEB", text="fine", blocks=blocks)
    stored = emu.messages("C0WEB")[0]
    assert resp["ts"] == stored.ts and len(stored.blocks) == 50
    assert all(b["block_id"] for b in stored.blocks), "Slack fills in missing block_ids"


async def test_blocks_are_checked_on_update_ephemeral_and_views(
    client: AsyncWebClient, emu: SlackEmulator
) -> None:
    posted = await client.chat_postMessage(channel="C0WEB", text="t")
    bad = [section("x" * 3001)]
    update = await api_error(
        client.chat_update(channel="C0WEB", ts=posted["ts"], text="t", blocks=bad)
    )
    eph = await api_error(
        client.chat_postEphemeral(channel="C0WEB", user="U0BOB", text="t", blocks=bad)
    )
    assert update.response["error"] == eph.response["error"] == "invalid_blocks"
    trigger = emu.tokens.issue_trigger("U0ALICE")
    long_title = {"type": "modal", "title": {"type": "plain_text", "text": "t" * 25}, "blocks": []}
    view = await api_error(client.views_open(trigger_id=trigger, view=long_title))
    assert view.response["error"] == "invalid_arguments"
    assert "/view/title/text" in view.response["errors"][0]


# -- rate limit ---------------------------------------------------------------------------


async def test_burst_beyond_the_channel_budget_gets_429(clock: FakeClock) -> None:
    emu = SlackEmulator(channel_rate_per_second=1.0, channel_burst=2, clock=clock)
    async with emu.serve():
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        for i in range(2):
            await client.chat_postMessage(channel="C0ALERTS", text=f"ok {i}")
        error = await api_error(client.chat_postMessage(channel="C0ALERTS", text="too many"))
        assert error.response.status_code == 429
        assert error.response["error"] == "ratelimited"
        assert int(error.response.headers["Retry-After"]) >= 1
        assert (emu.calls[-1].status, emu.calls[-1].error) == (429, "ratelimited")
        await client.chat_postMessage(channel="C0GENERAL", text="each channel has its own budget")
        await client.chat_postEphemeral(channel="C0ALERTS", user="U0BOB", text="not limited")
        clock.now += 1.0
        await client.chat_postMessage(channel="C0ALERTS", text="refilled after a second")
        emu.reset_rate_limits()
        await client.chat_postMessage(channel="C0ALERTS", text="reset")
    assert [m.text for m in emu.messages("C0ALERTS")][-2:] == ["refilled after a second", "reset"]


# -- messages -------------------------------------------------------------------------------


async def test_update_keeps_edit_history(client: AsyncWebClient, emu: SlackEmulator) -> None:
    posted = await client.chat_postMessage(channel="C0DEPLOYS", text="v1", blocks=[section("one")])
    ts = posted["ts"]
    await client.chat_update(channel="C0DEPLOYS", ts=ts, text="v2")
    resp = await client.chat_update(channel="C0DEPLOYS", ts=ts, text="v3", blocks=[section("3")])
    msg = emu.messages("C0DEPLOYS")[0]
    assert [v.text for v in msg.edits] == ["v1", "v2"]
    assert msg.edits[1].blocks[0]["text"]["text"] == "one", "left-out blocks are kept"
    assert (msg.text, msg.blocks[0]["text"]["text"]) == ("v3", "3")
    assert resp["message"]["edited"]["user"] == emu.bot_user_id
    missing = await api_error(client.chat_update(channel="C0DEPLOYS", ts="1.000001", text="x"))
    assert missing.response["error"] == "message_not_found"


async def test_thread_replies_and_broadcast(client: AsyncWebClient, emu: SlackEmulator) -> None:
    parent = await client.chat_postMessage(channel="C0ALERTS", text="alert")
    first = await client.chat_postMessage(channel="C0ALERTS", text="r1", thread_ts=parent["ts"])
    await client.chat_postMessage(
        channel="C0ALERTS", text="r2", thread_ts=parent["ts"], reply_broadcast=True
    )
    assert [m.text for m in emu.thread("C0ALERTS", parent["ts"])] == ["r1", "r2"]
    assert [m.text for m in emu.messages("C0ALERTS")] == ["alert", "r2"]
    assert float(first["ts"]) > float(parent["ts"])
    nested = await api_error(
        client.chat_postMessage(channel="C0ALERTS", text="x", thread_ts=first["ts"])
    )
    assert nested.response["error"] == "thread_not_found"
    link = await client.chat_getPermalink(channel="C0ALERTS", message_ts=first["ts"])
    assert link["permalink"].startswith(f"{emu.base_url}/archives/C0ALERTS/p")
    assert f"thread_ts={parent['ts']}" in link["permalink"]


async def test_ephemeral_delete_and_reaction(client: AsyncWebClient, emu: SlackEmulator) -> None:
    resp = await client.chat_postEphemeral(channel="C0GENERAL", user="U0ALICE", text="psst")
    eph = emu.ephemerals(user="U0ALICE")
    assert [(e.ts, e.text, e.channel) for e in eph] == [(resp["message_ts"], "psst", "C0GENERAL")]
    posted = await client.chat_postMessage(channel="C0GENERAL", text="bye")
    await client.reactions_add(channel="C0GENERAL", timestamp=posted["ts"], name="eyes")
    assert emu.messages("C0GENERAL")[0].reactions == {"eyes": [emu.bot_user_id]}
    again = await api_error(
        client.reactions_add(channel="C0GENERAL", timestamp=posted["ts"], name="eyes")
    )
    assert again.response["error"] == "already_reacted"
    await client.chat_delete(channel="C0GENERAL", ts=posted["ts"])
    assert emu.messages("C0GENERAL") == []


async def test_directory_lookups(client: AsyncWebClient) -> None:
    alice = (await client.users_info(user="U0ALICE"))["user"]
    assert alice["profile"]["email"] == "alice@example.com" and alice["is_bot"] is False
    by_mail = await client.users_lookupByEmail(email="BOB@example.com")
    assert by_mail["user"]["id"] == "U0BOB"
    assert (await client.usergroups_users_list(usergroup="S0SRE"))["users"] == ["U0BOB"]
    channel = (await client.conversations_info(channel="C0ALERTS"))["channel"]
    assert (channel["name"], channel["is_channel"]) == ("alerts", True)
    errors = [
        await api_error(client.users_info(user="U0NOBODY")),
        await api_error(client.users_lookupByEmail(email="nobody@example.com")),
        await api_error(client.usergroups_users_list(usergroup="S0NONE")),
        await api_error(client.conversations_info(channel="C0NONE")),
    ]
    assert [e.response["error"] for e in errors] == [
        "user_not_found",
        "users_not_found",
        "no_such_subteam",
        "channel_not_found",
    ]


# -- driver and signatures --------------------------------------------------------------------


async def test_slash_command_is_signed_and_encoded_like_slack(
    driver: SlackDriver, bot: TinyBot, emu: SlackEmulator
) -> None:
    resp = await driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")
    assert resp.status == 200
    form = bot.received[0]["form"]
    assert form["command"] == "/ops" and form["text"] == "help"
    assert (form["user_id"], form["user_name"], form["channel_name"]) == (
        "U0ALICE",
        "alice",
        "general",
    )
    assert form["response_url"].startswith(f"{emu.base_url}/response/")
    assert form["is_enterprise_install"] == "false" and len(form["trigger_id"].split(".")) == 3
    assert emu.deliveries[-1].kind == "command" and emu.deliveries[-1].status == 200


async def test_signature_verifies_and_tampering_is_caught(
    driver: SlackDriver, bot: TinyBot
) -> None:
    body = b"command=%2Fops&text=help"
    now = int(time.time())
    headers = driver.sign(body, now)
    assert SignatureVerifier(driver.signing_secret).is_valid_request(body, headers)
    assert not SignatureVerifier(driver.signing_secret).is_valid_request(body + b"x", headers)
    tampered = await driver.send_raw(body + b"&user_id=U0BOB", sign=False, extra_headers=headers)
    stale = await driver.send_raw(body, timestamp=now - 600)
    good = await driver.send_raw(body)
    assert (tampered.status, stale.status, good.status) == (401, 401, 200)


async def test_slash_answer_becomes_ephemeral_or_channel_message(
    driver: SlackDriver, bot: TinyBot, emu: SlackEmulator
) -> None:
    bot.answer = lambda _: (200, "usage: /ops help")
    await driver.command("/ops", "nonsense", user="U0CAROL", channel="C0DEPLOYS")
    assert [(e.user, e.text) for e in emu.ephemerals("C0DEPLOYS")] == [
        ("U0CAROL", "usage: /ops help")
    ]
    bot.answer = lambda _: (200, json.dumps({"response_type": "in_channel", "text": "all good"}))
    await driver.command("/ops", "status", user="U0CAROL", channel="C0DEPLOYS")
    assert [m.text for m in emu.messages("C0DEPLOYS")] == ["all good"]
    bot.answer = lambda _: (500, "boom")
    failed = await driver.command("/ops", "status", user="U0CAROL", channel="C0DEPLOYS")
    assert failed.status == 500 and failed.note and "500" in failed.note


async def test_retry_resends_the_same_body(driver: SlackDriver, bot: TinyBot) -> None:
    first = await driver.command("/deploy", "web 1.2.3", user="U0ALICE")
    again = await driver.retry(first)
    assert again.status == 200
    assert bot.received[1]["raw"] == bot.received[0]["raw"]
    assert bot.received[1]["headers"]["X-Slack-Retry-Num"] == "1"
    assert bot.received[1]["headers"]["X-Slack-Retry-Reason"] == "http_timeout"
    assert "X-Slack-Retry-Num" not in bot.received[0]["headers"]


async def test_find_button_newest_first_and_names_what_it_saw(
    client: AsyncWebClient, emu: SlackEmulator
) -> None:
    await client.chat_postMessage(channel="C0DEPLOYS", text="old", blocks=[buttons("Approve")])
    newer = await client.chat_postMessage(
        channel="C0DEPLOYS", text="new", blocks=[buttons("Approve", "Reject")]
    )
    msg, block_id, button = emu.find_button("Approve")
    assert (msg.ts, block_id, button["action_id"]) == (newer["ts"], "approval", "approve")
    with pytest.raises(LookupError, match=r"'Promote'.*Approve.*Reject"):
        emu.find_button("Promote")
    with pytest.raises(LookupError):
        emu.find_button("Approve", channel="C0GENERAL")


async def test_click_sends_block_actions_and_each_click_is_new(
    client: AsyncWebClient, driver: SlackDriver, bot: TinyBot, emu: SlackEmulator
) -> None:
    posted = await client.chat_postMessage(
        channel="C0DEPLOYS", text="approve?", blocks=[section("web 1.2"), buttons("Approve")]
    )
    await driver.click("Approve", user="U0BOB")
    await driver.click("Approve", user="U0BOB")
    first, second = (r["payload"] for r in bot.received)
    assert first["type"] == "block_actions"
    assert first["user"] == {
        "id": "U0BOB",
        "username": "bob",
        "name": "bob",
        "team_id": "T0SANDBOX",
    }
    assert first["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": "C0DEPLOYS",
        "is_ephemeral": False,
    }
    assert first["message"]["ts"] == posted["ts"] and first["message"]["blocks"][1]["elements"]
    action = first["actions"][0]
    assert (action["action_id"], action["block_id"], action["value"]) == (
        "approve",
        "approval",
        "approve-value",
    )
    assert action["type"] == "button" and action["text"]["text"] == "Approve"
    assert first["actions"][0]["action_ts"] != second["actions"][0]["action_ts"]
    assert first["trigger_id"] != second["trigger_id"]


async def test_select_sends_the_picked_option(
    client: AsyncWebClient, driver: SlackDriver, bot: TinyBot
) -> None:
    options = [
        {"text": {"type": "plain_text", "text": t}, "value": t.lower()} for t in ("Web", "Api")
    ]
    select = {
        "type": "static_select",
        "action_id": "service",
        "placeholder": {"type": "plain_text", "text": "Pick a service"},
        "options": options,
    }
    await client.chat_postMessage(
        channel="C0GENERAL", text="pick", blocks=[{"type": "actions", "elements": [select]}]
    )
    await driver.select("Pick a service", "api", user="U0ALICE")
    action = bot.received[0]["payload"]["actions"][0]
    assert action["type"] == "static_select"
    assert action["selected_option"]["value"] == "api"


# -- response_url ----------------------------------------------------------------------------


async def test_response_url_ephemeral_in_channel_and_use_limit(
    driver: SlackDriver, bot: TinyBot, emu: SlackEmulator
) -> None:
    await driver.command("/build", "web", user="U0ALICE", channel="C0WEB")
    hook = AsyncWebhookClient(bot.received[0]["form"]["response_url"])
    assert (await hook.send(text="only you see this")).status_code == 200
    assert (await hook.send(text="everyone", response_type="in_channel")).status_code == 200
    assert [e.text for e in emu.ephemerals(channel="C0WEB", user="U0ALICE")] == [
        "only you see this"
    ]
    assert [m.text for m in emu.messages("C0WEB")] == ["everyone"]
    bad = await hook.send(blocks=[section("x" * 3001)])
    assert (bad.status_code, bad.body) == (400, "invalid_blocks")
    for _ in range(3):
        assert (await hook.send(text="more")).status_code == 200
    sixth = await hook.send(text="one too many")
    assert (sixth.status_code, sixth.body) == (404, "used_url")
    assert [c.status for c in emu.calls if c.method == "response_url"][-2:] == [200, 404]


async def test_response_url_expires_after_30_minutes(
    driver: SlackDriver, bot: TinyBot, emu: SlackEmulator, clock: FakeClock
) -> None:
    await driver.command("/ops", "status")
    clock.now += 30 * 60
    hook = AsyncWebhookClient(bot.received[0]["form"]["response_url"])
    late = await hook.send(text="too late")
    assert (late.status_code, late.body) == (404, "expired_url")


async def test_response_url_replaces_and_deletes_the_clicked_message(
    client: AsyncWebClient, driver: SlackDriver, bot: TinyBot, emu: SlackEmulator
) -> None:
    await client.chat_postMessage(channel="C0DEPLOYS", text="approve?", blocks=[buttons("Approve")])
    await driver.click("Approve", user="U0BOB")
    hook = AsyncWebhookClient(bot.received[0]["payload"]["response_url"])
    await hook.send(text="approved by bob", replace_original=True)
    msg = emu.messages("C0DEPLOYS")[0]
    assert msg.text == "approved by bob" and msg.blocks == []
    assert [v.text for v in msg.edits] == ["approve?"]
    await hook.send(delete_original=True)
    assert emu.messages("C0DEPLOYS") == []


async def test_ephemeral_buttons_can_be_clicked_and_replaced(
    client: AsyncWebClient, driver: SlackDriver, bot: TinyBot, emu: SlackEmulator
) -> None:
    await client.chat_postEphemeral(
        channel="C0GENERAL", user="U0ALICE", text="sure?", blocks=[buttons("Confirm")]
    )
    await driver.click_ephemeral("Confirm", user="U0ALICE")
    payload = bot.received[0]["payload"]
    assert payload["container"]["is_ephemeral"] is True and "message" not in payload
    await AsyncWebhookClient(payload["response_url"]).send(text="done", replace_original=True)
    assert [e.text for e in emu.ephemerals(user="U0ALICE")] == ["done"]


# -- views -----------------------------------------------------------------------------------

MODAL = {
    "type": "modal",
    "callback_id": "task_create",
    "title": {"type": "plain_text", "text": "New task"},
    "submit": {"type": "plain_text", "text": "Create"},
    "private_metadata": "C0GENERAL",
    "blocks": [
        {
            "type": "input",
            "block_id": "title",
            "label": {"type": "plain_text", "text": "Title"},
            "element": {"type": "plain_text_input", "action_id": "value"},
        },
        {
            "type": "input",
            "block_id": "project",
            "optional": True,
            "label": {"type": "plain_text", "text": "Project"},
            "element": {
                "type": "static_select",
                "action_id": "pick",
                "options": [{"text": {"type": "plain_text", "text": "Web"}, "value": "web"}],
            },
        },
    ],
}


async def test_views_open_needs_a_fresh_trigger(
    client: AsyncWebClient, emu: SlackEmulator, clock: FakeClock
) -> None:
    fresh = emu.tokens.issue_trigger("U0ALICE")
    opened = await client.views_open(trigger_id=fresh, view=MODAL)
    view_id = opened["view"]["id"]
    assert view_id.startswith("V") and emu.views[view_id].user == "U0ALICE"
    assert emu.views[view_id].view["callback_id"] == "task_create"
    reused = await api_error(client.views_open(trigger_id=fresh, view=MODAL))
    stale = emu.tokens.issue_trigger("U0ALICE")
    clock.now += 3.0
    expired = await api_error(client.views_open(trigger_id=stale, view=MODAL))
    unknown = await api_error(client.views_open(trigger_id="1.2.3", view=MODAL))
    assert [e.response["error"] for e in (reused, expired, unknown)] == [
        "exchanged_trigger_id",
        "expired_trigger_id",
        "invalid_trigger_id",
    ]


async def test_views_update_by_id_with_hash(client: AsyncWebClient, emu: SlackEmulator) -> None:
    opened = await client.views_open(trigger_id=emu.tokens.issue_trigger("U0ALICE"), view=MODAL)
    view = opened["view"]
    changed = {**MODAL, "title": {"type": "plain_text", "text": "Edited"}}
    updated = await client.views_update(view_id=view["id"], hash=view["hash"], view=changed)
    assert updated["view"]["title"]["text"] == "Edited" and updated["view"]["id"] == view["id"]
    conflict = await api_error(
        client.views_update(view_id=view["id"], hash=view["hash"], view=MODAL)
    )
    assert conflict.response["error"] == "hash_conflict"


async def test_view_submission_errors_keep_the_view_open(
    client: AsyncWebClient, driver: SlackDriver, bot: TinyBot, emu: SlackEmulator
) -> None:
    opened = await client.views_open(trigger_id=emu.tokens.issue_trigger("U0ALICE"), view=MODAL)
    view_id = opened["view"]["id"]
    blocked = await driver.submit_view(view_id, {})
    assert blocked.status == 0 and bot.received == [], "the client refuses an empty required input"
    errors = {"response_action": "errors", "errors": {"title": "Too short"}}
    bot.answer = lambda _: (200, json.dumps(errors))
    await driver.submit_view(view_id, {"title": {"value": "x"}, "project": {"pick": "web"}})
    payload = bot.received[0]["payload"]
    assert payload["type"] == "view_submission" and payload["view"]["id"] == view_id
    assert payload["view"]["state"]["values"] == {
        "title": {"value": {"type": "plain_text_input", "value": "x"}},
        "project": {
            "pick": {
                "type": "static_select",
                "selected_option": {"text": {"type": "plain_text", "text": "Web"}, "value": "web"},
            }
        },
    }
    assert emu.views[view_id].errors == {"title": "Too short"} and emu.views[view_id].is_open
    bot.answer = lambda _: (200, "")
    await driver.submit_view(view_id, {"title": {"value": "A proper title"}})
    assert not emu.views[view_id].is_open


# -- control routes --------------------------------------------------------------------------


async def test_long_poll_wakes_on_a_change(client: AsyncWebClient, emu: SlackEmulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{emu.base_url}/_emulator/state") as resp:
            before = (await resp.json())["version"]

        async def wait() -> dict[str, Any]:
            url = f"{emu.base_url}/_emulator/wait?since={before}"
            async with session.get(url) as resp:
                result: dict[str, Any] = await resp.json()
                return result

        waiting = asyncio.create_task(wait())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        started = time.monotonic()
        await client.chat_postMessage(channel="C0GENERAL", text="wake up")
        state = await asyncio.wait_for(waiting, 2)
    assert time.monotonic() - started < 1.0
    assert state["version"] > before
    assert [m["text"] for m in state["messages"]["C0GENERAL"]] == ["wake up"]
    assert state["messages"]["C0GENERAL"][0]["user_name"] == "opsloop"
    approvers = {u["id"] for u in state["users"] if u["approver"]}
    assert approvers == {"U0BOB"}, "an approver group counts its members"


async def test_control_routes_refuse_bad_json(emu: SlackEmulator) -> None:
    async with aiohttp.ClientSession() as session:
        for route in ("command", "action", "view_submission", "view_close"):
            url = f"{emu.base_url}/_emulator/{route}"
            async with session.post(url, data=b"{not json") as resp:
                assert resp.status == 400, route
                assert "JSON" in (await resp.json())["error"]
        async with session.post(f"{emu.base_url}/_emulator/command", json={"text": "x"}) as resp:
            assert resp.status == 400
        async with session.get(f"{emu.base_url}/_emulator/wait?since=abc") as resp:
            assert resp.status == 400


async def test_control_routes_drive_the_bot(
    client: AsyncWebClient, bot: TinyBot, emu: SlackEmulator
) -> None:
    bot.answer = lambda _: (200, "on it")
    async with aiohttp.ClientSession() as session:
        command = {"user": "U0ALICE", "channel": "C0GENERAL", "command": "/ops", "text": "status"}
        async with session.post(f"{emu.base_url}/_emulator/command", json=command) as resp:
            assert await resp.json() == {
                "status": 200,
                "answer": "on it",
                "note": None,
                "elapsed_ms": pytest.approx(0, abs=3000),
            }
        posted = await client.chat_postMessage(
            channel="C0DEPLOYS", text="approve?", blocks=[buttons("Approve")]
        )
        action = {
            "user": "U0BOB",
            "channel": "C0DEPLOYS",
            "message_ts": posted["ts"],
            "block_id": "approval",
            "action_id": "approve",
        }
        async with session.post(f"{emu.base_url}/_emulator/action", json=action) as resp:
            assert (await resp.json())["status"] == 200
        missing = {**action, "message_ts": "1.000001"}
        async with session.post(f"{emu.base_url}/_emulator/action", json=missing) as resp:
            assert resp.status == 404
    assert bot.received[0]["form"]["text"] == "status"
    assert bot.received[1]["payload"]["actions"][0]["action_id"] == "approve"


async def test_control_routes_submit_and_close_views(
    client: AsyncWebClient, bot: TinyBot, emu: SlackEmulator
) -> None:
    opened = await client.views_open(trigger_id=emu.tokens.issue_trigger("U0ALICE"), view=MODAL)
    view_id = opened["view"]["id"]
    url = f"{emu.base_url}/_emulator"
    async with aiohttp.ClientSession() as session:
        empty = {"user": "U0ALICE", "view_id": view_id, "values": {"title": {"value": ""}}}
        async with session.post(f"{url}/view_submission", json=empty) as resp:
            answer = await resp.json()
        assert answer["status"] == 0 and answer["errors"] == {
            "title": "Please complete this required field."
        }
        filled = {
            "user": "U0ALICE",
            "view_id": view_id,
            "values": {
                "title": {"value": "Fix the build"},
                "project": {
                    "pick": {
                        "selected_option": {
                            "text": {"type": "plain_text", "text": "Web"},
                            "value": "web",
                        }
                    }
                },
            },
        }
        bot.answer = lambda _: (
            200,
            json.dumps({"response_action": "errors", "errors": {"title": "Taken"}}),
        )
        async with session.post(f"{url}/view_submission", json=filled) as resp:
            assert (await resp.json())["errors"] == {"title": "Taken"}
        state_values = bot.received[0]["payload"]["view"]["state"]["values"]
        assert state_values["project"]["pick"]["selected_option"]["value"] == "web"
        for _ in range(2):  # closing twice is harmless: the page may close optimistically
            async with session.post(f"{url}/view_close", json={"view_id": view_id}) as resp:
                assert resp.status == 200
        async with session.get(f"{url}/state") as resp:
            assert (await resp.json())["views"] == []


async def test_delays_hold_a_method_until_cleared(
    client: AsyncWebClient, emu: SlackEmulator
) -> None:
    emu.delays["users.info"] = 30.0
    held = asyncio.create_task(client.users_info(user="U0ALICE"))
    await asyncio.sleep(0.1)
    assert not held.done()
    emu.delays.clear()
    resp = await asyncio.wait_for(held, 1.0)
    assert resp["user"]["id"] == "U0ALICE"


# -- Socket Mode -----------------------------------------------------------------------------


class TinySocketApp:
    """A stand-in for a Socket Mode bot on slack_sdk's own aiohttp SocketModeClient: it records
    each envelope and acks with what `answer` returns (None: a bare ack), after `delay` s."""

    def __init__(self, emu: SlackEmulator) -> None:
        self.client = SocketModeClient(
            app_token=emu.app_token, web_client=AsyncWebClient(base_url=emu.api_url)
        )
        self.received: list[SocketModeRequest] = []
        self.answer: Callable[[SocketModeRequest], dict[str, Any] | None] = lambda _: None
        self.delay = 0.0
        self.client.socket_mode_request_listeners.append(self.handle)  # type: ignore[arg-type]

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:
        self.received.append(req)
        await asyncio.sleep(self.delay)
        ack = SocketModeResponse(envelope_id=req.envelope_id, payload=self.answer(req))
        await client.send_socket_mode_response(ack)


@pytest.fixture
async def socket_app(emu: SlackEmulator) -> AsyncIterator[TinySocketApp]:
    app = TinySocketApp(emu)
    await app.client.connect()  # type: ignore[no-untyped-call]
    assert await emu.socket.wait_for_client(within=5)
    yield app
    await app.client.close()  # type: ignore[no-untyped-call]


@pytest.fixture
async def socket_driver(emu: SlackEmulator) -> AsyncIterator[SlackDriver]:
    async with SlackDriver(emu, transport="socket") as d:
        yield d


async def test_apps_connections_open_takes_only_the_app_token(emu: SlackEmulator) -> None:
    web = AsyncWebClient(base_url=emu.api_url)
    first = await web.apps_connections_open(app_token=emu.app_token)
    second = await web.apps_connections_open(app_token=emu.app_token)
    port = emu.base_url.rsplit(":", 1)[1] if emu.base_url else ""
    assert first["url"].startswith(f"ws://127.0.0.1:{port}/link/?ticket=")
    assert first["url"].endswith(f"&app_id={emu.app_id}") and first["url"] != second["url"]
    bot_token = await api_error(web.apps_connections_open(app_token=emu.bot_token))
    assert bot_token.response["error"] == "not_allowed_token_type"
    wrong = await api_error(web.apps_connections_open(app_token="xapp-1-wrong"))
    assert wrong.response["error"] == "invalid_auth"
    # The app-level token opens connections and nothing else.
    app_as_bot = AsyncWebClient(token=emu.app_token, base_url=emu.api_url)
    assert (await api_error(app_as_bot.auth_test())).response["error"] == "not_allowed_token_type"
    # Slack wants this token in the Authorization header; as a form field it is refused.
    async with (
        aiohttp.ClientSession() as session,
        session.post(emu.api_url + "apps.connections.open", data={"token": emu.app_token}) as r,
    ):
        assert await r.json() == {"ok": False, "error": "not_authed"}


async def test_a_ticket_opens_one_connection_that_says_hello_and_pongs(
    emu: SlackEmulator,
) -> None:
    opened = await AsyncWebClient(base_url=emu.api_url).apps_connections_open(
        app_token=emu.app_token
    )
    url = opened["url"]
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, autoping=False) as ws:
            hello = await ws.receive_json(timeout=2)
            assert hello["type"] == "hello" and hello["num_connections"] == 1
            assert hello["connection_info"] == {"app_id": emu.app_id}
            assert emu.socket.connected
            # slack_sdk checks the connection with pings that carry a timestamp.
            await ws.ping(b"sdk-ping-pong:1700000000.0")
            pong = await ws.receive(timeout=2)
            assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"sdk-ping-pong:1700000000.0")
            for spent in (url, url.replace("ticket=", "ticket=x")):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await session.ws_connect(spent)
                assert refused.value.status == 401
        await eventually(lambda: not emu.socket.connected, what="the closed connection")


async def test_stopping_the_emulator_closes_socket_connections() -> None:
    emulator = SlackEmulator()
    async with emulator.serve(), aiohttp.ClientSession() as session:
        opened = await AsyncWebClient(base_url=emulator.api_url).apps_connections_open(
            app_token=emulator.app_token
        )
        ws = await session.ws_connect(opened["url"])
        await ws.receive_json(timeout=2)
        started = time.monotonic()
    closing = await ws.receive(timeout=2)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert time.monotonic() - started < 1.5, "open sockets must not hold the shutdown"


async def test_socket_envelopes_carry_the_http_payloads_and_acks_are_applied(
    client: AsyncWebClient,
    emu: SlackEmulator,
    socket_app: TinySocketApp,
    socket_driver: SlackDriver,
) -> None:
    socket_app.answer = lambda _: {"text": "usage: /ops help"}
    resp = await socket_driver.command("/ops", "nonsense", user="U0CAROL", channel="C0DEPLOYS")
    assert resp.ok and resp.json == {"text": "usage: /ops help"}
    req = socket_app.received[0]
    assert (req.type, req.accepts_response_payload, req.retry_attempt) == (
        "slash_commands",
        True,
        None,
    )
    assert req.payload["command"] == "/ops" and req.payload["text"] == "nonsense"
    assert req.payload["user_id"] == "U0CAROL" and req.payload["channel_name"] == "deploys"
    assert req.payload["response_url"].startswith(f"{emu.base_url}/response/")
    assert [(e.user, e.text) for e in emu.ephemerals("C0DEPLOYS")] == [
        ("U0CAROL", "usage: /ops help")
    ]
    delivery = emu.deliveries[-1]
    assert (delivery.transport, delivery.status, delivery.kind) == ("socket", 200, "command")
    assert json.loads(delivery.body)["envelope_id"] == req.envelope_id

    socket_app.answer = lambda _: {"response_type": "in_channel", "text": "all good"}
    await socket_driver.command("/ops", "status", user="U0CAROL", channel="C0DEPLOYS")
    assert [m.text for m in emu.messages("C0DEPLOYS")] == ["all good"]

    socket_app.answer = lambda _: None
    await client.chat_postMessage(channel="C0WEB", text="approve?", blocks=[buttons("Approve")])
    click = await socket_driver.click("Approve", user="U0BOB", channel="C0WEB")
    assert click.ok and click.body == ""
    clicked = socket_app.received[-1]
    assert (clicked.type, clicked.accepts_response_payload) == ("interactive", False)
    assert clicked.payload["type"] == "block_actions"
    assert clicked.payload["actions"][0]["action_id"] == "approve"

    opened = await client.views_open(trigger_id=emu.tokens.issue_trigger("U0ALICE"), view=MODAL)
    view_id = opened["view"]["id"]
    socket_app.answer = lambda _: {"response_action": "errors", "errors": {"title": "Taken"}}
    await socket_driver.submit_view(view_id, {"title": {"value": "x"}})
    submitted = socket_app.received[-1]
    assert (submitted.type, submitted.accepts_response_payload) == ("interactive", True)
    assert submitted.payload["view"]["id"] == view_id
    assert emu.views[view_id].errors == {"title": "Taken"} and emu.views[view_id].is_open
    socket_app.answer = lambda _: None
    await socket_driver.submit_view(view_id, {"title": {"value": "A proper title"}})
    assert not emu.views[view_id].is_open


async def test_socket_retry_resends_the_payload_and_late_acks_are_ignored(
    emu: SlackEmulator, socket_app: TinySocketApp, socket_driver: SlackDriver
) -> None:
    first = await socket_driver.command("/deploy", "web 1.2.3", user="U0ALICE")
    again = await socket_driver.retry(first)
    assert first.ok and again.ok
    original, retried = socket_app.received
    assert retried.payload == original.payload
    assert (retried.retry_attempt, retried.retry_reason) == (1, "timeout")
    assert retried.envelope_id != original.envelope_id
    assert emu.deliveries[-1].retry_num == 1

    socket_app.delay = 0.5
    socket_app.answer = lambda _: {"text": "too late"}
    socket_driver.ack_deadline = 0.2
    slow = await socket_driver.command("/ops", "status", user="U0ALICE", channel="C0GENERAL")
    assert slow.status == 0 and slow.timed_out and not slow.ok
    assert slow.note is not None and "operation_timeout" in slow.note
    await eventually(lambda: emu.socket.late_acks, what="the late ack")
    assert emu.socket.late_acks[0]["payload"] == {"text": "too late"}
    assert not emu.ephemerals(), "Slack ignores an ack that came after it gave up"


async def test_socket_transport_without_a_client_says_so(emu: SlackEmulator, bot: TinyBot) -> None:
    emulator = SlackEmulator(socket_mode=True)
    # An HTTP bot is there too: the driver must still not fall back to it.
    emulator.bot_events_url = emu.bot_events_url
    async with emulator.serve(), aiohttp.ClientSession() as session:
        assert emulator.control_driver().transport == "socket"
        command = {"user": "U0ALICE", "command": "/ops", "text": "help"}
        async with session.post(f"{emulator.base_url}/_emulator/command", json=command) as resp:
            answer = await resp.json()
        assert answer["status"] == 0 and answer["note"] == "no Socket Mode client connected"
        envelope = json.loads(emulator.deliveries[-1].body)
        assert envelope["type"] == "slash_commands"
        assert emulator.deliveries[-1].transport == "socket"
    assert bot.received == [], "nothing goes over HTTP while the emulator is in Socket Mode"


async def test_disconnect_makes_the_app_reconnect(
    emu: SlackEmulator, socket_app: TinySocketApp, socket_driver: SlackDriver
) -> None:
    assert await emu.socket.disconnect("refresh_requested") == 1
    await eventually(lambda: emu.socket.connects == 2, what="a second connection")
    opens = [c for c in emu.calls if c.method == "apps.connections.open"]
    assert len(opens) == 2 and all(c.ok for c in opens)
    await eventually(lambda: len(emu.socket.connections) == 1, what="the old connection to close")
    resp = await socket_driver.command("/ops", "help", user="U0ALICE")
    assert resp.ok and len(socket_app.received) == 1
