"""The sandbox page in a real browser (Debian's chromium through Playwright).

The page is served by `add_page_routes` next to a small fake of the Slack emulator's control
routes (the same JSON shapes), which records every request the page makes, so each test reads
back exactly what a click or a typed command sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from bot.sandbox.page import add_page_routes
from tests.browser import open_page

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

ALICE, BOB, BOT = "U0ALICE", "U0BOB", "U0BOT"
GENERAL, DEPLOYS = "C0GENERAL", "C0DEPLOY"
DEPLOY_TS = "1700000200.000100"
REPLY_TS = "1700000260.000200"

Json = dict[str, Any]


def _deploy_message() -> Json:
    return {
        "ts": DEPLOY_TS,
        "user": BOT,
        "user_name": "opsloop",
        "text": "Deploy web 2: waiting for approval",
        "thread_ts": DEPLOY_TS,
        "reply_count": 1,
        "edited": False,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Deploy web 2"}},
            {
                "type": "section",
                "block_id": "summary",
                "text": {"type": "mrkdwn", "text": "Canary of *web* `2` is at *25%*."},
                "fields": [
                    {"type": "mrkdwn", "text": "*Step*\n1 of 3"},
                    {"type": "mrkdwn", "text": "*Started by*\n<@U0ALICE>"},
                ],
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "Needs 1 approval"}]},
            {"type": "divider"},
            {
                "type": "actions",
                "block_id": "deploy:dep-1",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "deploy_approve",
                        "style": "primary",
                        "value": "dep-1",
                        "text": {"type": "plain_text", "text": "Approve"},
                    },
                    {
                        "type": "button",
                        "action_id": "deploy_reject",
                        "style": "danger",
                        "value": "dep-1",
                        "text": {"type": "plain_text", "text": "Reject"},
                        "confirm": {
                            "title": {"type": "plain_text", "text": "Reject web 2?"},
                            "text": {"type": "mrkdwn", "text": "The canary is rolled back."},
                            "confirm": {"type": "plain_text", "text": "Roll back"},
                            "deny": {"type": "plain_text", "text": "Keep it"},
                        },
                    },
                    {
                        "type": "static_select",
                        "action_id": "deploy_step",
                        "placeholder": {"type": "plain_text", "text": "Jump to step"},
                        "options": [
                            {"text": {"type": "plain_text", "text": "50%"}, "value": "50"},
                            {"text": {"type": "plain_text", "text": "100%"}, "value": "100"},
                        ],
                    },
                ],
            },
            {"type": "video", "title": {"type": "plain_text", "text": "a block the page lacks"}},
        ],
        "replies": [
            {
                "ts": REPLY_TS,
                "user": BOT,
                "user_name": "opsloop",
                "text": "Canary at 25% is healthy",
                "thread_ts": DEPLOY_TS,
                "reply_count": 0,
                "edited": False,
                "replies": [],
                "blocks": [
                    {
                        "type": "section",
                        "block_id": "health",
                        "text": {"type": "mrkdwn", "text": "Canary at 25% is healthy"},
                        "accessory": {
                            "type": "button",
                            "action_id": "deploy_promote",
                            "value": "dep-1",
                            "text": {"type": "plain_text", "text": "Promote now"},
                        },
                    }
                ],
            }
        ],
    }


def _task_view(user: str) -> Json:
    option = {"text": {"type": "plain_text", "text": "High"}, "value": "high"}
    return {
        "id": "V0TASK1",
        "user": user,
        "errors": None,
        "view": {
            "type": "modal",
            "callback_id": "task_create",
            "title": {"type": "plain_text", "text": "New task"},
            "submit": {"type": "plain_text", "text": "Create"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "blocks": [
                {
                    "type": "input",
                    "block_id": "title_block",
                    "label": {"type": "plain_text", "text": "Title"},
                    "element": {"type": "plain_text_input", "action_id": "title"},
                },
                {
                    "type": "input",
                    "block_id": "desc_block",
                    "optional": True,
                    "label": {"type": "plain_text", "text": "Description"},
                    "element": {
                        "type": "plain_text_input",
                        "action_id": "description",
                        "multiline": True,
                    },
                },
                {
                    "type": "input",
                    "block_id": "priority_block",
                    "label": {"type": "plain_text", "text": "Priority"},
                    "element": {
                        "type": "static_select",
                        "action_id": "priority",
                        "options": [
                            {"text": {"type": "plain_text", "text": "Low"}, "value": "low"},
                            option,
                        ],
                    },
                },
                {
                    "type": "input",
                    "block_id": "assignee_block",
                    "optional": True,
                    "label": {"type": "plain_text", "text": "Assignee"},
                    "element": {"type": "users_select", "action_id": "assignee"},
                },
                {
                    "type": "input",
                    "block_id": "labels_block",
                    "optional": True,
                    "label": {"type": "plain_text", "text": "Labels"},
                    "element": {
                        "type": "multi_static_select",
                        "action_id": "labels",
                        "options": [
                            {"text": {"type": "plain_text", "text": "bug"}, "value": "bug"},
                            {"text": {"type": "plain_text", "text": "ops"}, "value": "ops"},
                        ],
                    },
                },
            ],
        },
    }


class FakeEmulator:
    """The emulator's control routes over an in-memory state; records what the page sends."""

    def __init__(self) -> None:
        self.version = 1
        self.requests: list[tuple[str, Json]] = []
        self._changed = asyncio.Condition()
        self._closing = False
        self._clock = 1_700_000_300
        self.users: list[Json] = [
            {"id": ALICE, "name": "alice", "real_name": "Alice Adams", "approver": False},
            {"id": BOB, "name": "bob", "real_name": "Bob Baker", "approver": True},
            {"id": BOT, "name": "opsloop", "real_name": "opsloop", "approver": False},
        ]
        self.channels: list[Json] = [
            {"id": GENERAL, "name": "general"},
            {"id": DEPLOYS, "name": "deploys"},
        ]
        self.messages: dict[str, list[Json]] = {
            GENERAL: [
                self._message(
                    ALICE,
                    "Hello <@U0BOB>, is &lt;web&gt; *ready*? See <https://example.com/x?a=1&amp;b=2|"
                    "the docs> in <#C0DEPLOY>.\n&lt;img src=x onerror=window.pwned=1&gt;",
                    ts="1700000100.000100",
                    edited=True,
                )
            ],
            DEPLOYS: [_deploy_message()],
        }
        self.ephemerals: list[Json] = []
        self.views: list[Json] = []

    def _next_ts(self) -> str:
        self._clock += 1
        return f"{self._clock}.000100"

    def _message(self, user: str, text: str, *, ts: str = "", edited: bool = False) -> Json:
        name = next(u["name"] for u in self.users if u["id"] == user)
        return {
            "ts": ts or self._next_ts(),
            "user": user,
            "user_name": name,
            "text": text,
            "blocks": [],
            "thread_ts": None,
            "reply_count": 0,
            "edited": edited,
            "replies": [],
        }

    def state(self) -> Json:
        return copy.deepcopy(
            {
                "version": self.version,
                "team": {"id": "T0SANDBOX", "name": "Sandbox"},
                "bot_user_id": BOT,
                "users": self.users,
                "channels": self.channels,
                "messages": self.messages,
                "ephemerals": self.ephemerals,
                "views": self.views,
            }
        )

    async def bump(self) -> None:
        async with self._changed:
            self.version += 1
            self._changed.notify_all()

    async def post_message(self, channel: str, user: str, text: str) -> None:
        self.messages[channel].append(self._message(user, text))
        await self.bump()

    async def close(self) -> None:
        """Release every pending long poll so the server can stop at once."""
        async with self._changed:
            self._closing = True
            self._changed.notify_all()

    async def wait_for_request(self, kind: str, count: int = 1) -> Json:
        """The `count`-th request of this kind the page has sent, waiting up to 5 s for it."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            seen = [body for k, body in self.requests if k == kind]
            if len(seen) >= count:
                return seen[count - 1]
            await asyncio.sleep(0.02)
        raise AssertionError(f"the page sent no {kind} request #{count}: {self.requests}")

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _wait(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "-1"))
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.version > since or self._closing), 5
                )
        return web.json_response(self.state())

    async def _command(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(("command", body))
        if body["command"] == "/fail":
            return web.json_response({"status": 500, "answer": "boom"})
        if body["command"] == "/task" and not body["text"]:
            self.views.append(_task_view(body["user"]))
        else:
            self.ephemerals.append(
                {
                    "channel": body["channel"],
                    "user": body["user"],
                    "ts": self._next_ts(),
                    "text": f"Usage of `{body['command']}`: *help* shows this.",
                    "blocks": [
                        {
                            "type": "section",
                            "block_id": "usage",
                            "text": {
                                "type": "mrkdwn",
                                "text": f"Usage of `{body['command']}`: *help* shows this.",
                            },
                        },
                        {
                            "type": "actions",
                            "block_id": "more",
                            "elements": [
                                {
                                    "type": "button",
                                    "action_id": "help_more",
                                    "text": {"type": "plain_text", "text": "More"},
                                }
                            ],
                        },
                    ],
                }
            )
        await self.bump()
        return web.json_response({"status": 200, "answer": ""})

    async def _action(self, request: web.Request) -> web.Response:
        self.requests.append(("action", await request.json()))
        return web.json_response({"status": 200})

    async def _view_submission(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(("view_submission", body))
        view = next(v for v in self.views if v["id"] == body["view_id"])
        title = body["values"]["title_block"]["title"]
        if len(title) < 3:
            view["errors"] = {"title_block": "Title must be at least 3 characters"}
            await self.bump()
            return web.json_response({"status": 200, "errors": view["errors"]})
        self.views.remove(view)
        self.messages[GENERAL].append(self._message(BOT, f"Created task *{title}*"))
        self.messages[GENERAL][-1]["user_name"] = "opsloop"
        await self.bump()
        return web.json_response({"status": 200, "errors": None})

    async def _view_close(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(("view_close", body))
        self.views = [v for v in self.views if v["id"] != body["view_id"]]
        await self.bump()
        return web.json_response({"status": 200})

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/_emulator/state", self._state)
        app.router.add_get("/_emulator/wait", self._wait)
        app.router.add_post("/_emulator/command", self._command)
        app.router.add_post("/_emulator/action", self._action)
        app.router.add_post("/_emulator/view_submission", self._view_submission)
        app.router.add_post("/_emulator/view_close", self._view_close)
        add_page_routes(app)
        return app


@dataclass
class Sandbox:
    page: Any  # playwright.async_api.Page; Any keeps the module importable without playwright
    fake: FakeEmulator
    url: str


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    fake = FakeEmulator()
    runner = web.AppRunner(fake.make_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        url = f"http://127.0.0.1:{port}/"
        async with open_page(url) as (page, errors):
            yield Sandbox(page, fake, url)
            assert not errors, f"JavaScript errors on the page: {errors}"
    finally:
        await fake.close()
        await runner.cleanup()


async def test_page_and_assets_are_served_with_their_types(sandbox: Sandbox) -> None:
    page = sandbox.page
    for path, kind in [
        ("", "text/html"),
        ("static/sandbox.js", "text/javascript"),
        ("static/sandbox.css", "text/css"),
    ]:
        response = await page.request.get(sandbox.url + path)
        assert response.status == 200
        assert response.headers["content-type"].startswith(kind)
    for path in ["static/nope.js", "static/..%2Fpage.py", "static/%2E%2E%2Fpage.py"]:
        response = await page.request.get(sandbox.url + path)
        assert response.status == 404, path


async def test_command_answer_arrives_live_and_typing_survives_updates(sandbox: Sandbox) -> None:
    from playwright.async_api import expect

    page, fake = sandbox.page, sandbox.fake
    await expect(page.get_by_test_id(f"channel-{GENERAL}")).to_have_attribute(
        "aria-current", "page"
    )

    # mrkdwn: formatting, entities, mentions and links; escaped text stays text.
    hello = page.get_by_test_id("message").first
    await expect(hello).to_contain_text("Hello @bob, is <web> ready? See the docs in #deploys.")
    await expect(hello).to_contain_text("<img src=x onerror=window.pwned=1>")
    await expect(hello).to_contain_text("(edited)")
    await expect(hello.locator("strong")).to_have_text("ready")
    await expect(hello.locator("a")).to_have_attribute("href", "https://example.com/x?a=1&b=2")
    assert await hello.locator("img").count() == 0
    assert await page.evaluate("window.pwned") is None

    command = page.get_by_test_id("command-input")
    await command.fill("/ops help")
    await command.press("Enter")
    assert await fake.wait_for_request("command") == {
        "user": ALICE,
        "channel": GENERAL,
        "command": "/ops",
        "text": "help",
    }
    ephemeral = page.get_by_test_id("ephemeral")
    await expect(ephemeral).to_contain_text("Only visible to you")
    await expect(ephemeral).to_contain_text("Usage of /ops: help shows this.")
    await expect(command).to_have_value("")

    # A button in an ephemeral names the ephemeral, not a message.
    await ephemeral.get_by_test_id("button").filter(has_text="More").click()
    posted = await fake.wait_for_request("action")
    assert posted == {
        "user": ALICE,
        "channel": GENERAL,
        "ephemeral_ts": posted["ephemeral_ts"],
        "block_id": "more",
        "action_id": "help_more",
    }
    assert posted["ephemeral_ts"] == await ephemeral.get_attribute("data-ts")

    # An update while someone types: the text stays, the other channel gets an unread marker.
    await command.fill("/deploy we")
    await fake.post_message(DEPLOYS, BOB, "rolling web 2 out")
    await expect(page.get_by_test_id(f"channel-{DEPLOYS}")).to_have_attribute("data-unread", "true")
    await expect(command).to_have_value("/deploy we")
    await expect(command).to_be_focused()

    # A non-2xx answer from the bot is shown next to the box.
    await command.fill("/fail now")
    await command.press("Enter")
    await expect(page.locator("#command-status")).to_contain_text("HTTP 500")


async def test_block_kit_buttons_selects_and_thread(sandbox: Sandbox) -> None:
    from playwright.async_api import expect

    page, fake = sandbox.page, sandbox.fake
    await page.get_by_test_id(f"channel-{DEPLOYS}").click()
    deploy = page.locator(f'[data-testid="message"][data-ts="{DEPLOY_TS}"]')
    await expect(deploy.locator(".b-header")).to_have_text("Deploy web 2")
    await expect(deploy.locator(".b-section-text")).to_have_text("Canary of web 2 is at 25%.")
    await expect(deploy.locator(".b-field")).to_have_text(["Step\n1 of 3", "Started by\n@alice"])
    await expect(deploy.locator(".b-context")).to_have_text("Needs 1 approval")
    await expect(deploy.locator(".b-unknown")).to_contain_text("video")
    approve = deploy.get_by_test_id("button").filter(has_text="Approve")
    await expect(approve).to_have_class("btn btn-primary")
    await expect(deploy.get_by_test_id("button").filter(has_text="Reject")).to_have_class(
        "btn btn-danger"
    )

    await page.get_by_test_id("user-picker").select_option(BOB)
    await expect(page.get_by_test_id("approver-badge")).to_be_visible()
    await approve.click()
    assert await fake.wait_for_request("action") == {
        "user": BOB,
        "channel": DEPLOYS,
        "message_ts": DEPLOY_TS,
        "block_id": "deploy:dep-1",
        "action_id": "deploy_approve",
        "value": "dep-1",
    }
    await expect(approve).to_have_class("btn btn-primary is-sent")

    # A button with a confirm dialog sends nothing until confirmed.
    reject = deploy.get_by_test_id("button").filter(has_text="Reject")
    await reject.click()
    await expect(page.get_by_test_id("confirm")).to_contain_text("The canary is rolled back.")
    await page.get_by_test_id("confirm-deny").click()
    await expect(page.get_by_test_id("confirm")).to_have_count(0)
    await reject.click()
    await page.get_by_test_id("confirm-ok").click()
    rejected = await fake.wait_for_request("action", 2)
    assert rejected["action_id"] == "deploy_reject"

    await deploy.locator("select.b-select").select_option(label="100%")
    assert await fake.wait_for_request("action", 3) == {
        "user": BOB,
        "channel": DEPLOYS,
        "message_ts": DEPLOY_TS,
        "block_id": "deploy:dep-1",
        "action_id": "deploy_step",
        "selected_option": {"text": {"type": "plain_text", "text": "100%"}, "value": "100"},
    }

    await deploy.get_by_test_id("replies-link").click()
    pane = page.get_by_test_id("thread-pane")
    await expect(pane).to_be_visible()
    await expect(pane.get_by_test_id("thread-parent")).to_contain_text("Deploy web 2")
    reply = pane.get_by_test_id("thread-reply")
    await expect(reply).to_contain_text("Canary at 25% is healthy")
    await reply.get_by_test_id("button").filter(has_text="Promote now").click()
    assert await fake.wait_for_request("action", 4) == {
        "user": BOB,
        "channel": DEPLOYS,
        "message_ts": REPLY_TS,
        "block_id": "health",
        "action_id": "deploy_promote",
        "value": "dep-1",
    }


async def test_modal_submit_errors_and_cancel(sandbox: Sandbox) -> None:
    from playwright.async_api import expect

    page, fake = sandbox.page, sandbox.fake
    command = page.get_by_test_id("command-input")
    await command.fill("/task")
    await command.press("Enter")
    modal = page.get_by_test_id("modal")
    await expect(modal).to_be_visible()
    await expect(modal.locator(".modal-title")).to_have_text("New task")

    title = modal.locator('[data-block-id="title_block"] input')
    await title.fill("ab")
    await modal.locator('[data-block-id="priority_block"] select').select_option(label="High")
    await page.get_by_test_id("modal-submit").click()
    first = await fake.wait_for_request("view_submission")
    assert first["values"]["title_block"] == {"title": "ab"}
    error = modal.locator('[data-block-id="title_block"] [data-testid="field-error"]')
    await expect(error).to_have_text("Title must be at least 3 characters")
    await expect(title).to_have_value("ab")

    await title.fill("Fix login")
    await modal.locator('[data-block-id="desc_block"] textarea').fill("It fails\non Mondays")
    await modal.locator('[data-block-id="assignee_block"] select').select_option(label="Bob Baker")
    await modal.locator('[data-block-id="labels_block"] select').select_option(label=["bug", "ops"])
    await page.get_by_test_id("modal-submit").click()
    second = await fake.wait_for_request("view_submission", 2)
    assert second == {
        "user": ALICE,
        "view_id": "V0TASK1",
        "values": {
            "title_block": {"title": "Fix login"},
            "desc_block": {"description": "It fails\non Mondays"},
            "priority_block": {
                "priority": {
                    "selected_option": {
                        "text": {"type": "plain_text", "text": "High"},
                        "value": "high",
                    }
                }
            },
            "assignee_block": {"assignee": {"selected_user": BOB}},
            "labels_block": {
                "labels": {
                    "selected_options": [
                        {"text": {"type": "plain_text", "text": "bug"}, "value": "bug"},
                        {"text": {"type": "plain_text", "text": "ops"}, "value": "ops"},
                    ]
                }
            },
        },
    }
    await expect(modal).to_have_count(0)
    await expect(page.get_by_test_id("message").last).to_contain_text("Created task Fix login")

    # A required field left empty is caught before anything is sent; Cancel closes the view.
    await command.fill("/task")
    await command.press("Enter")
    await expect(modal).to_be_visible()
    await page.get_by_test_id("modal-submit").click()
    await expect(modal.get_by_test_id("field-error")).to_have_count(2)
    await page.get_by_test_id("modal-cancel").click()
    assert await fake.wait_for_request("view_close") == {"view_id": "V0TASK1"}
    await expect(modal).to_have_count(0)
    assert len([k for k, _ in fake.requests if k == "view_submission"]) == 2
