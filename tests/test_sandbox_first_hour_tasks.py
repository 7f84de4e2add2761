"""The first hour's task paths in `opsloop sandbox`, on a phone-sized window (390 px wide).

Create task on an alert in #alerts (a channel with no project of its own) opens the task form
with a project picker, filled in from the alert; submitting it files the issue in the emulated
GitLab and says so in the alert's thread. The wording fixed with it shows on the page: the
alert's title once, counts with their nouns, pipeline results as words, `--` and an unknown
@name answered with what to type instead, a second Close answered "already closed".
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from bot.sandbox.runner import GITLAB_TOKEN
from tests.browser import open_page
from tests.test_sandbox_e2e import sandbox_url  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(150)]
PHONE = {"width": 390, "height": 844}


async def _send(page: Any, command: str) -> None:
    box = page.get_by_test_id("command-input")
    await box.fill(command)
    await box.press("Enter")


async def _issue(page: Any, web_url: str) -> dict[str, Any]:
    """The issue behind a link, from the emulated GitLab's API."""
    found = re.fullmatch(r"(https?://[^/]+)/(.+)/-/issues/(\d+)", web_url)
    assert found is not None, web_url
    base, project, iid = found.groups()
    answer = await page.request.get(
        f"{base}/api/v4/projects/{quote(project, safe='')}/issues/{iid}",
        headers={"PRIVATE-TOKEN": GITLAB_TOKEN},
    )
    assert answer.status == 200, await answer.text()
    issue: dict[str, Any] = await answer.json()
    return issue


async def test_create_task_from_an_alert_at_phone_width(
    sandbox_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with open_page(sandbox_url) as (page, errors):
        await page.set_viewport_size(PHONE)
        await page.get_by_test_id("user-picker").select_option("U0ALICE")
        fired = await page.request.post(sandbox_url + "_sandbox/alert", data='{"action": "fire"}')
        assert (await fired.json())["status"] == 202, await fired.text()

        await page.get_by_test_id("channel-C0ALERTS").click()
        alert = page.get_by_test_id("message").filter(has_text="AL-1")
        await alert.wait_for(timeout=10_000)
        # The title once: the parent no longer repeats it under its header.
        assert (await alert.inner_text()).count("HighLatency") == 1

        # #alerts has no project: Create task opens the form with a project picker, filled in
        # from the alert, instead of asking for `project:alias`.
        await alert.get_by_test_id("button").filter(has_text="Create task").click()
        modal = page.get_by_test_id("modal")
        await modal.wait_for(timeout=10_000)
        title = modal.get_by_label("Title", exact=True)
        assert (await title.input_value()).startswith("AL-1 HighLatency")
        description = await modal.get_by_label("Description").input_value()
        assert "Firing:" in description and "Runbook:" in description, description
        project = modal.get_by_label("Project")
        assert await project.input_value() == ""  # two projects, neither #alerts': pick one
        await modal.get_by_test_id("modal-submit").click()
        project_error = modal.locator('.field[data-block-id="project"]')
        await project_error.get_by_test_id("field-error").wait_for(timeout=5_000)
        await page.screenshot(path=str(tmp_path / "create-task-form-390.png"))

        await project.select_option("web")
        await modal.get_by_test_id("modal-submit").click()
        await modal.wait_for(state="detached", timeout=10_000)
        await alert.get_by_test_id("replies-link").click()
        pane = page.get_by_test_id("thread-pane")
        said = pane.get_by_test_id("thread-reply").filter(has_text="Task created by")
        await said.wait_for(timeout=15_000)
        link = said.get_by_role("link", name="acme/web#1")
        issue = await _issue(page, await link.get_attribute("href") or "")
        assert issue["title"].startswith("AL-1 HighLatency")
        assert "Firing:" in issue["description"] and "From Slack:" in issue["description"]
        shot = tmp_path / "create-task-thread-390.png"
        await page.screenshot(path=str(shot))
        print(f"screenshot at 390 px: {shot}")
        await pane.get_by_test_id("thread-close").click()

        # The wording fixed with it, as a newcomer meets it.
        await page.get_by_test_id("channel-C0GENERAL").click()
        ephemerals = page.get_by_test_id("ephemeral")
        await _send(page, "/task -- only a description")
        await ephemerals.filter(has_text="needs a title before").wait_for(timeout=10_000)
        await _send(page, "/task @nobody Fix it")
        nobody = ephemerals.filter(has_text="has no user")
        await nobody.wait_for(timeout=10_000)
        assert "users:" in await nobody.inner_text()
        assert (
            await page.get_by_test_id("message").filter(has_text="only a description").count() == 0
        )

        await _send(page, "/build web")
        build = page.get_by_test_id("message").filter(has_text="Pipeline")
        await build.filter(has_text="passed").first.wait_for(timeout=30_000)
        assert "is success" not in await build.first.inner_text()

        await _send(page, "/task close web#1")
        await ephemerals.filter(has_text="Closed").wait_for(timeout=10_000)
        await _send(page, "/task close web#1")
        again = ephemerals.filter(has_text="was already closed by")
        await again.wait_for(timeout=10_000)

        await page.get_by_test_id("channel-C0DEPLOYS").click()
        await _send(page, "/deploy api 1.2.0")
        deploy = page.get_by_test_id("message").filter(has_text="Deploy api")
        await deploy.get_by_test_id("button").filter(has_text="Approve").wait_for(timeout=30_000)
        await deploy.get_by_test_id("replies-link").click()
        counted = pane.get_by_text(re.compile(r"\b1 (approval|approver)\b"))
        await counted.first.wait_for(timeout=10_000)

        state = await (await page.request.get(sandbox_url + "_emulator/state")).json()
        everything = json.dumps(state)
        assert "(s)" not in everything and "Which project?" not in everything
        assert not errors, errors
