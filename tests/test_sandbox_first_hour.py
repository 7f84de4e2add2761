"""A newcomer's first hour in `opsloop sandbox`, on a phone-sized window (390 px wide).

Each path that used to end in a dead end, walked in a real browser: every link in a message
opens a readable page (the emulated GitLab's issue, pipeline and job pages; a Slack permalink
opens the page at the message), a mistyped command gets Slack's answer listing the commands, a
reload starts afresh (no old ephemerals, no modal), and the layout and the emoji hold at 390 px.
The emulator-level rules behind them (no browser) come first.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.emulators.gitlab import GitLabEmulator
from bot.sandbox.emulators.slack import SLACKBOT, SlackDriver, SlackEmulator
from bot.sandbox.runner import BOT_TOKEN
from tests.browser import open_page
from tests.sandbox_process import sandbox_process

PHONE = {"width": 390, "height": 844}
# The page has its first state from the sandbox (a function: the page's CSP forbids eval).
LIVE = "() => document.querySelector('#connection').dataset.state === 'live'"
MODAL = {
    "type": "modal",
    "callback_id": "task",
    "title": {"type": "plain_text", "text": "Create a task"},
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Hello"}}],
}


# -- the emulator's rules --------------------------------------------------------------------


@pytest.fixture
async def emu() -> AsyncIterator[SlackEmulator]:
    emulator = SlackEmulator(commands=["/ops", "/task", "/deploy"])
    async with emulator.serve():
        yield emulator


async def test_slack_answers_an_unknown_command_itself(emu: SlackEmulator) -> None:
    """Slack never asks the app about a command it did not register: Slackbot answers."""
    async with SlackDriver(emu, events_url="http://127.0.0.1:9/never") as driver:
        answer = await driver.command("/opz", "help", user="U0ALICE", channel="C0GENERAL")
    assert emu.deliveries == []  # the app was not asked
    assert answer.note is not None and "not a valid command" in answer.note
    (notice,) = emu.ephemerals(channel="C0GENERAL", user="U0ALICE")
    assert notice.sender == SLACKBOT
    assert notice.text.startswith("/opz is not a valid command. Did you mean /ops?")
    assert "/ops, /task, /deploy" in notice.text
    assert "HTTP" not in notice.text


async def test_a_page_session_drops_ephemerals_and_closes_the_modal(emu: SlackEmulator) -> None:
    client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
    await client.chat_postEphemeral(channel="C0GENERAL", user="U0ALICE", text="only you")
    opened = await client.views_open(trigger_id=emu.tokens.issue_trigger("U0ALICE"), view=MODAL)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{emu.base_url}/_emulator/session") as resp:
            assert resp.status == 200
        async with http.get(f"{emu.base_url}/_emulator/state") as resp:
            state = await resp.json()
    assert state["ephemerals"] == [] and state["views"] == []
    # The app's later update of the modal gets what Slack answers for a closed one.
    with pytest.raises(SlackApiError) as refused:
        await client.views_update(view_id=opened["view"]["id"], view=MODAL)
    assert refused.value.response["error"] == "not_found"


async def test_permalinks_open_the_page_at_the_message(emu: SlackEmulator) -> None:
    client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
    parent = await client.chat_postMessage(channel="C0GENERAL", text="parent")
    reply = await client.chat_postMessage(channel="C0GENERAL", text="reply", thread_ts=parent["ts"])
    async with aiohttp.ClientSession() as http:
        for ts, thread in ((parent["ts"], None), (reply["ts"], parent["ts"])):
            link = await client.chat_getPermalink(channel="C0GENERAL", message_ts=ts)
            async with http.get(link["permalink"], allow_redirects=False) as resp:
                assert resp.status == 302
                where = resp.headers["Location"]
            expected = f"/#/archives/C0GENERAL/p{ts.replace('.', '')}"
            assert where == expected + (f"?thread_ts={thread}" if thread else "")


async def test_the_state_names_each_group_by_its_handle(emu: SlackEmulator) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{emu.base_url}/_emulator/state") as r:
        groups = {g["id"]: g["handle"] for g in (await r.json())["usergroups"]}
    assert groups == {"S0SRE": "sre", "S0ONCALL": "oncall"}


async def test_every_web_url_of_the_gitlab_emulator_opens_a_page() -> None:
    """Every `web_url` in what the API hands out (project, group, issue, author, pipeline, job,
    commit, branch) opens an HTML page without a token, as a public project's would; the API
    itself still wants the token."""
    gitlab = GitLabEmulator()
    gitlab.pipeline_step_seconds = None  # moved by hand below
    async with gitlab.serve() as url, aiohttp.ClientSession() as http:
        gitlab.add_issue(
            "acme/web", "Fix <it>", description="See https://example.com/x", labels=["bug"]
        )
        api = f"{url}/api/v4/projects/acme%2Fweb"
        token = {"PRIVATE-TOKEN": gitlab.token}
        async with http.post(f"{api}/pipeline", json={"ref": "main"}, headers=token) as resp:
            pipeline = await resp.json()
        gitlab.advance_pipelines(3)
        shown: list[Any] = [pipeline]
        for path in ("", "/issues", f"/pipelines/{pipeline['id']}/jobs", "/repository/branches"):
            async with http.get(api + path, headers=token) as resp:
                assert resp.status == 200, (path, await resp.text())
                shown.append(await resp.json())
        urls = sorted(set(_web_urls(shown)))
        kinds = {"/-/issues/", "/-/pipelines/", "/-/jobs/", "/-/commit/", "/-/tree/", "/groups/"}
        assert all(any(k in u for u in urls) for k in kinds), urls
        for web_url in urls:
            async with http.get(web_url) as resp:
                assert resp.status == 200, web_url
                assert resp.content_type == "text/html", web_url
                assert "<title>" in await resp.text()
        issue = next(u for u in urls if "/-/issues/" in u)
        async with http.get(issue) as resp:
            html = await resp.text()
        assert "Fix &lt;it&gt;" in html and "<it>" not in html  # text, never markup
        assert '<a href="https://example.com/x">' in html
        async with http.get(api) as resp:
            assert resp.status == 401  # no token: the API refuses, as before
        async with http.get(f"{url}/api/v4/nothing", headers=token) as resp:
            assert resp.status == 404 and resp.content_type == "application/json"


def _web_urls(found: Any) -> Iterator[str]:
    if isinstance(found, dict):
        for key, value in found.items():
            if key == "web_url" and isinstance(value, str):
                yield value
            else:
                yield from _web_urls(value)
    elif isinstance(found, list):
        for item in found:
            yield from _web_urls(item)


# -- the sandbox in a browser, 390 px wide -----------------------------------------------------


@pytest.fixture
def sandbox_url(tmp_path: Path) -> Iterator[str]:
    with sandbox_process(tmp_path) as url:
        yield url


async def _alice_in_general(page: Any) -> None:
    await page.get_by_test_id("channel-C0GENERAL").click()
    await page.get_by_test_id("user-picker").select_option("U0ALICE")


async def _send(page: Any, command: str) -> None:
    box = page.get_by_test_id("command-input")
    await box.fill(command)
    await box.press("Enter")


async def _readable(page: Any, url: str, title: str) -> None:
    """The URL answers a plain GET (no token) with an HTML page titled `title`."""
    answer = await page.request.get(url)
    assert answer.status == 200, (url, answer.status, await answer.text())
    assert answer.headers["content-type"].startswith("text/html"), answer.headers
    html = await answer.text()
    found = re.search(r"<title>(.*?)</title>", html)
    assert found is not None and title in found.group(1), (url, html[:300])


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_every_link_opens_a_readable_page(sandbox_url: str) -> None:
    async with open_page(sandbox_url, **PHONE) as (page, errors):
        await _alice_in_general(page)
        messages = page.get_by_test_id("message")

        # An issue link: the issue's page, with what the message said.
        await _send(page, "/task Fix the login redirect #bug")
        task = messages.filter(has_text="acme/web#1")
        await task.wait_for(timeout=10_000)
        issue_url = await task.get_by_role("link", name="acme/web#1").get_attribute("href")
        await _readable(page, issue_url, "Fix the login redirect")
        gitlab = await page.context.browser.new_page(viewport=PHONE)
        await gitlab.goto(issue_url)
        text = await gitlab.locator("main").inner_text()
        assert "Fix the login redirect" in text and "bug" in text and "opened" in text, text

        # A pipeline link, and a job link on the pipeline's page.
        await _send(page, "/build web")
        build = messages.filter(has_text="Pipeline")
        await build.filter(has_text="passed").first.wait_for(timeout=30_000)
        pipeline_url = await build.locator('a[href*="/-/pipelines/"]').first.get_attribute("href")
        await _readable(page, pipeline_url, "Pipeline #")
        await gitlab.goto(pipeline_url)
        assert "main" in await gitlab.locator("main").inner_text()
        unit = gitlab.get_by_role("link", name="unit", exact=True)
        job_url = await unit.get_attribute("href")
        await _readable(page, job_url, "Job unit")
        await unit.click()
        log = gitlab.locator("pre.log")
        assert "Job succeeded" in await log.inner_text()
        assert "success" in await gitlab.locator("h1").inner_text()

        # A permalink of a thread reply, from the task made of it: the page opens the thread
        # with the reply lit, even from another channel.
        await build.get_by_test_id("replies-link").click()
        pane = page.get_by_test_id("thread-pane")
        tests_reply = pane.get_by_test_id("thread-reply").filter(has_text="Tests:")
        await tests_reply.get_by_test_id("shortcut").filter(has_text="Create task").click()
        form = page.get_by_test_id("modal")  # the task form, #general's project picked
        await form.wait_for(timeout=10_000)
        await form.get_by_test_id("modal-submit").click()
        await form.wait_for(state="detached", timeout=10_000)
        made = pane.get_by_test_id("thread-reply").filter(has_text="acme/web#2")
        await made.wait_for(timeout=10_000)
        reply_ts = await tests_reply.get_attribute("data-ts")
        issue_2 = await made.get_by_role("link", name="acme/web#2").get_attribute("href")
        await gitlab.close()
        await pane.get_by_test_id("thread-close").click()  # on a phone the thread fills it
        await page.get_by_test_id("channel-C0ALERTS").click()  # the page remembers it
        await page.goto(issue_2)
        permalink = page.locator('main a[href*="/archives/"]')
        href = await permalink.get_attribute("href") or ""
        assert "thread_ts=" in href
        await _readable(page, href, "opsloop sandbox")  # the page itself, after a redirect
        await permalink.click()
        lit = page.locator(f'[data-testid="thread-pane"] .msg-highlight[data-ts="{reply_ts}"]')
        await lit.wait_for(timeout=10_000)
        assert "Tests:" in await lit.inner_text()
        assert await page.get_by_test_id("channel-C0GENERAL").get_attribute("aria-current")
        assert not errors, errors


@pytest.mark.browser
@pytest.mark.timeout(120)
async def test_typos_reloads_and_the_phone_layout(sandbox_url: str, tmp_path: Path) -> None:
    async with open_page(sandbox_url, **PHONE) as (page, errors):
        await _alice_in_general(page)
        ephemerals = page.get_by_test_id("ephemeral")

        # A typo: Slack's own answer, listing the commands; never an HTTP error.
        await _send(page, "/opz help")
        notice = ephemerals.filter(has_text="is not a valid command")
        await notice.wait_for(timeout=10_000)
        text = await notice.inner_text()
        assert "Slackbot" in text and "Did you mean /ops?" in text, text
        assert "/task" in text and "/deploy" in text, text
        status = await page.get_by_test_id("command-input").evaluate(
            "() => document.getElementById('command-status').innerText"
        )
        assert "HTTP" not in status and "unhandled" not in status, status
        # The bot's own families list their subcommands for a word they do not know.
        for command, listed in (
            ("/ops nonsense", "/ops status"),
            ("/deploy nonsense", "/deploy promote"),
        ):
            await _send(page, command)
            await ephemerals.filter(has_text=listed).last.wait_for(timeout=10_000)

        # A reload drops the ephemerals, as a Slack client's does ...
        assert await ephemerals.count() >= 3
        await page.reload()
        await page.get_by_test_id("channel-C0GENERAL").wait_for()
        await page.wait_for_function(LIVE)
        assert await ephemerals.count() == 0
        # ... and the modal that was open.
        await _send(page, "/task")
        modal = page.get_by_test_id("modal")
        await modal.wait_for(timeout=10_000)
        await page.reload()
        await page.wait_for_function(LIVE)
        assert await modal.count() == 0
        state = await (await page.request.get(sandbox_url + "_emulator/state")).json()
        assert state["views"] == [] and state["ephemerals"] == []

        # A group mention shows the group's handle; a date token the viewer's own clock, in the
        # form the page gives message times.
        posted = await page.request.post(
            sandbox_url + "api/chat.postMessage",
            headers={"Authorization": f"Bearer {BOT_TOKEN}"},
            data={
                "channel": "C0GENERAL",
                "text": "Paging <!subteam^S0SRE>: since <!date^1700000000^{date_short} {time}|"
                "2023-11-14 22:13 UTC>",
            },
        )
        assert (await posted.json())["ok"]
        paged = page.get_by_test_id("message").filter(has_text="Paging")
        await paged.wait_for(timeout=10_000)
        expected = await page.evaluate(
            """() => { const d = new Date(1700000000 * 1000);
              return `${d.toLocaleDateString([], {month: 'short'})} ${d.getDate()}, `
                + `${d.getFullYear()} `
                + d.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'}); }"""
        )
        assert await paged.locator(".msg-text").inner_text() == f"Paging @sre: since {expected}"

        # At 390 px a message takes the width: its lines hold several words each.
        await _send(page, "/task Write the runbook for the checkout service before Friday")
        task = page.get_by_test_id("message").filter(has_text="Write the runbook")
        await task.wait_for(timeout=10_000)
        layout = await task.locator(".msg-body").evaluate(LAYOUT_JS)
        assert layout["width"] > 300, layout
        assert layout["lines"] * 2 <= layout["words"], layout
        assert layout["pageWidth"] <= 390, layout  # nothing sticks out sideways

        # The emoji (📝 leads the task message) draw as colour glyphs, not boxes.
        assert "📝" in await task.inner_text()
        coloured = await page.evaluate(EMOJI_JS, "📝")
        assert coloured > 50, f"the emoji drew {coloured} coloured pixels: no emoji font?"

        shot = tmp_path / "sandbox-390.png"
        await page.screenshot(path=str(shot))
        if copy := os.environ.get("OPSLOOP_TEST_SCREENSHOT"):  # to look at it elsewhere
            await page.screenshot(path=copy)
        print(f"screenshot at 390 px: {shot}")
        assert not errors, errors


# A message body's width, and how many lines its first section's text takes against its words.
LAYOUT_JS = """(body) => {
  const text = body.querySelector('.b-section-text, .msg-text') || body;
  const range = document.createRange();
  range.selectNodeContents(text);
  const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
  return {
    width: body.getBoundingClientRect().width,
    lines: tops.size,
    words: text.innerText.trim().split(/\\s+/).length,
    pageWidth: document.documentElement.scrollWidth,
  };
}"""

# Coloured pixels of an emoji drawn with the page's own font stack: a colour emoji has many,
# a missing glyph's box has none.
EMOJI_JS = """(emoji) => {
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 64;
  const ctx = canvas.getContext('2d');
  ctx.font = `48px ${getComputedStyle(document.documentElement).fontFamily}`;
  ctx.textBaseline = 'top';
  ctx.fillStyle = '#000';
  ctx.fillText(emoji, 4, 4);
  const data = ctx.getImageData(0, 0, 64, 64).data;
  let coloured = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
    if (a > 0 && (Math.abs(r - g) > 30 || Math.abs(g - b) > 30)) coloured += 1;
  }
  return coloured;
}"""
