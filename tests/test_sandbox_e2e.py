"""`opsloop sandbox` as a newcomer runs it, used through its page in a real browser."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import open_page
from tests.sandbox_process import sandbox_process

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


@pytest.fixture
def sandbox_url(tmp_path: Path) -> Iterator[str]:
    with sandbox_process(tmp_path) as url:
        yield url


async def test_ops_help_and_status_refresh_in_the_browser(sandbox_url: str) -> None:
    async with open_page(sandbox_url) as (page, errors):
        box = page.get_by_test_id("command-input")
        await box.fill("/ops help")
        await box.press("Enter")
        help_text = page.get_by_test_id("ephemeral").filter(has_text="opsloop commands")
        await help_text.wait_for(timeout=10_000)
        assert "/ops audit" in await help_text.inner_text()

        await box.fill("/ops status")
        await box.press("Enter")
        status = page.get_by_test_id("ephemeral").filter(has_text="opsloop is healthy")
        await status.wait_for(timeout=10_000)
        before = await status.inner_text()
        assert "Workers" in before and "1 alive" in before

        await asyncio.sleep(1.1)  # the check time is shown to the second
        await status.get_by_test_id("button").filter(has_text="Refresh").click()
        # The same ephemeral is replaced in place with a new check time.
        checked = re.compile(r"Checked at (\d\d:\d\d:\d\d)")
        first = checked.search(before)
        assert first is not None
        await page.wait_for_function(
            """([old]) => [...document.querySelectorAll('[data-testid="ephemeral"]')]
                .some(e => e.innerText.includes('opsloop is healthy')
                           && !e.innerText.includes(old))""",
            arg=[first.group(0)],
            timeout=10_000,
        )
        healthy = page.get_by_test_id("ephemeral").filter(has_text="opsloop is healthy")
        assert await healthy.count() == 1, await page.get_by_test_id("ephemeral").all_inner_texts()

        await page.get_by_test_id("user-picker").select_option("U0BOB")
        await box.fill("/ops nonsense")
        await box.press("Enter")
        await (
            page.get_by_test_id("ephemeral")
            .filter(has_text="is not an /ops command")
            .wait_for(timeout=10_000)
        )
        assert not errors, errors


async def test_sample_alert_fires_is_acknowledged_and_resolves(sandbox_url: str) -> None:
    """The sandbox's Alertmanager stand-in posts a real webhook; the thread follows the group."""
    async with open_page(sandbox_url) as (page, errors):
        controls = page.get_by_test_id("sandbox-controls")
        await controls.wait_for(state="visible", timeout=10_000)
        assert "escalates to @sre (bob)" in await controls.inner_text()
        route = sandbox_url + "_sandbox/alert"
        for body, status, says in (
            ("{not json", 400, "must be JSON"),
            ('{"action": "explode"}', 400, "must be one of fire, add, resolve"),
            ('{"action": "resolve"}', 409, "Nothing is firing"),
        ):
            answer = await page.request.post(route, data=body)
            assert answer.status == status
            assert says in (await answer.json())["error"]

        await page.get_by_test_id("fire-alert").click()
        await (
            page.get_by_test_id("alert-status")
            .filter(has_text="accepted (HTTP 202)")
            .wait_for(timeout=10_000)
        )

        await page.get_by_test_id("channel-C0ALERTS").click()
        alert = page.get_by_test_id("message").filter(has_text="AL-1")
        await alert.wait_for(timeout=10_000)
        assert "HighLatency" in await alert.inner_text()
        ack = alert.get_by_test_id("button").filter(has_text="Acknowledge")
        await ack.wait_for(timeout=5_000)

        await page.get_by_test_id("user-picker").select_option("U0BOB")
        await ack.click()
        await alert.filter(has_text="Acknowledged by").wait_for(timeout=10_000)

        await page.get_by_test_id("resolve-alert").click()
        await alert.filter(has_text="[RESOLVED] HighLatency").wait_for(timeout=10_000)
        assert await ack.count() == 0  # a resolved group has no buttons left
        assert await page.get_by_test_id("alert-state").inner_text() == "Nothing firing."
        # One parent message for the group: updates went to it and its thread.
        assert await page.get_by_test_id("message").filter(has_text="HighLatency").count() == 1
        if shot := os.environ.get("OPSLOOP_TEST_SCREENSHOT"):  # to look at it: a .png path
            await page.screenshot(path=shot)
        assert not errors, errors


async def test_tasks_in_the_sandbox_command_modal_shortcut_buttons(sandbox_url: str) -> None:
    """/task against the sandbox's emulated GitLab: every entry point a newcomer can click."""
    async with open_page(sandbox_url) as (page, errors):
        shot = os.environ.get("OPSLOOP_TEST_SCREENSHOT")  # to look at them: a .png path
        box = page.get_by_test_id("command-input")
        picker = page.get_by_test_id("user-picker")
        await page.get_by_test_id("channel-C0GENERAL").click()
        await picker.select_option("U0ALICE")
        messages = page.get_by_test_id("message")

        # A one-line /task files acme/web#1 (the channel's project) and posts its message.
        await box.fill("/task Fix the login redirect #bug")
        await box.press("Enter")
        first = messages.filter(has_text="acme/web#1")
        await first.wait_for(timeout=10_000)
        assert await first.get_by_role("link", name="acme/web#1").count() == 1
        text = await first.inner_text()
        assert "Fix the login redirect" in text and "bug" in text and "nobody yet" in text
        buttons = first.get_by_test_id("button")
        assert await buttons.all_inner_texts() == ["Assign to me", "Close"]

        # Carol takes it: the same message changes in place.
        await picker.select_option("U0CAROL")
        await buttons.filter(has_text="Assign to me").click()
        await first.filter(has_text="@carol").wait_for(timeout=10_000)
        assert await messages.filter(has_text="acme/web#1").count() == 1
        assert await messages.count() == 1

        # /task alone (one of the page's examples) opens the form, the channel's project picked.
        await picker.select_option("U0ALICE")
        examples = page.locator("#command-examples")
        await examples.get_by_role("button", name="/task", exact=True).click()
        assert await box.input_value() == "/task"
        await box.press("Enter")
        modal = page.get_by_test_id("modal")
        await modal.wait_for(timeout=10_000)
        assert "Create a task" in await modal.inner_text()
        project = modal.get_by_label("Project")
        assert await project.input_value() == "web"
        title_error = modal.locator('.field[data-block-id="title"]').get_by_test_id("field-error")
        # An empty title: the page says so under Title, as Slack does, before the bot is asked.
        await modal.get_by_test_id("modal-submit").click()
        await title_error.wait_for(timeout=5_000)
        # Labels with a space: the bot's own response_action errors, under Labels.
        await modal.get_by_label("Title", exact=True).fill("Write the runbook")
        await modal.get_by_label("Labels").fill("run book")
        await modal.get_by_test_id("modal-submit").click()
        labels_error = modal.locator('.field[data-block-id="labels"]').get_by_test_id("field-error")
        await labels_error.filter(has_text="no spaces").wait_for(timeout=10_000)
        assert await title_error.count() == 0
        if shot:
            await page.screenshot(path=shot.replace(".png", "-modal.png"))
        await modal.get_by_label("Labels").fill("docs")
        await modal.get_by_test_id("modal-submit").click()
        await modal.wait_for(state="detached", timeout=10_000)
        second = messages.filter(has_text="acme/web#2")
        await second.wait_for(timeout=10_000)
        text = await second.inner_text()
        assert "Write the runbook" in text and "docs" in text and "nobody yet" in text

        # "Create task from message" on the second task's message: the form, prefilled, then a
        # third issue, linked in that message's thread.
        await second.get_by_test_id("shortcut").filter(has_text="Create task from message").click()
        await modal.wait_for(timeout=10_000)
        assert await modal.get_by_label("Project").input_value() == "web"
        await modal.get_by_test_id("modal-submit").click()
        await modal.wait_for(state="detached", timeout=10_000)
        replies = second.get_by_test_id("replies-link")
        await replies.filter(has_text="1 reply").wait_for(timeout=10_000)
        await replies.click()
        pane = page.get_by_test_id("thread-pane")
        reply = pane.get_by_test_id("thread-reply").filter(has_text="Task created")
        await reply.wait_for(timeout=5_000)
        assert await reply.get_by_role("link", name="acme/web#3").count() == 1
        await pane.get_by_test_id("thread-close").click()

        # /task list: only Alice sees it, every open task of the channel's project.
        await box.fill("/task list")
        await box.press("Enter")
        listing = page.get_by_test_id("ephemeral").filter(has_text="3 tasks open in acme/web")
        await listing.wait_for(timeout=10_000)
        text = await listing.inner_text()
        for ref in ("acme/web#1", "acme/web#2", "acme/web#3"):
            assert ref in text, text
        assert "@carol" in text and "Write the runbook" in text

        # Close on the first task: closed in place, no buttons left.
        await first.get_by_test_id("button").filter(has_text="Close").click()
        await first.filter(has_text="closed").wait_for(timeout=10_000)
        assert await first.get_by_test_id("button").count() == 0
        assert await first.locator("s", has_text="Fix the login redirect").count() == 1
        assert await second.get_by_test_id("button").count() == 2  # the others are untouched
        assert await messages.count() == 2
        if shot:
            await page.screenshot(path=shot)
        assert not errors, errors


async def test_a_build_moves_through_its_stages_in_one_message(sandbox_url: str) -> None:
    """/build web in the sandbox: the emulated GitLab runs the pipeline and tells the bot by
    webhook; one message follows it to the end, and Cancel stops a second one."""
    async with open_page(sandbox_url) as (page, errors):
        box = page.get_by_test_id("command-input")
        await page.get_by_test_id("channel-C0GENERAL").click()
        await page.get_by_test_id("user-picker").select_option("U0ALICE")
        await box.fill("/build web")
        await box.press("Enter")
        first = page.get_by_test_id("message").filter(has_text="Pipeline")
        await first.filter(has_text="running").first.wait_for(timeout=15_000)
        assert await first.count() == 1
        await first.filter(has_text="passed").first.wait_for(timeout=30_000)
        assert await first.count() == 1  # the same message, edited in place
        await first.get_by_test_id("replies-link").click()
        pane = page.get_by_test_id("thread-pane")
        await pane.get_by_text("Tests:").wait_for(timeout=10_000)

        await box.fill("/build web develop")
        await box.press("Enter")
        second = page.get_by_test_id("message").filter(has_text="develop")
        cancel = second.get_by_test_id("button").filter(has_text="Cancel")
        await cancel.wait_for(timeout=15_000)
        await cancel.click()
        await second.filter(has_text="canceled").wait_for(timeout=20_000)
        assert not errors, errors


async def test_a_deploy_is_approved_with_a_click(sandbox_url: str) -> None:
    """`/deploy api 1.2.0` (a chip under the command box) by Alice plays the canary job in the
    emulated GitLab; Bob's Approve plays production; the one message ends complete."""
    async with open_page(sandbox_url) as (page, errors):
        shot = os.environ.get("OPSLOOP_TEST_SCREENSHOT")  # to look at them: a .png path
        box = page.get_by_test_id("command-input")
        picker = page.get_by_test_id("user-picker")
        await page.get_by_test_id("channel-C0DEPLOYS").click()
        await picker.select_option("U0ALICE")
        examples = page.locator("#command-examples")
        chip = examples.get_by_role("button", name="/deploy api 1.2.0", exact=True)
        await chip.wait_for(timeout=10_000)  # added once the page has read /_sandbox/info
        assert await examples.get_by_role("button", name="/deploy status").count() == 1
        await chip.click()
        assert await box.input_value() == "/deploy api 1.2.0"
        await box.press("Enter")

        deploy = page.get_by_test_id("message").filter(has_text="Deploy api")
        approve = deploy.get_by_test_id("button").filter(has_text="Approve")
        await approve.wait_for(timeout=20_000)  # the canary job ran first
        text = await deploy.inner_text()
        assert "waiting for approval to go to 100%" in text and "canary" in text, text
        if shot:
            await page.screenshot(path=shot.replace(".png", "-deploy.png"))

        await picker.select_option("U0BOB")
        await approve.click()
        await deploy.filter(has_text="complete").wait_for(timeout=20_000)
        assert await approve.count() == 0
        assert await deploy.count() == 1  # the same message, edited in place
        await deploy.get_by_test_id("replies-link").click()
        pane = page.get_by_test_id("thread-pane")
        await pane.get_by_text("Approved by").wait_for(timeout=10_000)
        await pane.get_by_text("Complete:").wait_for(timeout=10_000)
        if shot:
            await page.screenshot(path=shot)
        assert not errors, errors
