"""The sandbox's sample alert names the last deploy of `api`, on a phone-sized window: Alice
deploys api 1.2.0, Bob approves, the sample alert fires in #alerts and its message says what
changed, by whom, approved by whom and how long before; Alice's Roll back click rolls it back
and the alert's thread says so."""

from __future__ import annotations

import os
import re

import pytest

from tests.browser import open_page
from tests.test_sandbox_e2e import sandbox_url  # noqa: F401  (the fixture)
from tests.test_sandbox_first_hour_tasks import PHONE, _send

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(150)]


async def test_the_sample_alert_names_the_last_deploy_of_api_with_roll_back(
    sandbox_url: str,  # noqa: F811
) -> None:
    shot = os.environ.get("OPSLOOP_TEST_SCREENSHOT")  # to look at them: a .png path
    async with open_page(sandbox_url, width=PHONE["width"], height=PHONE["height"]) as (
        page,
        errors,
    ):
        picker = page.get_by_test_id("user-picker")
        await picker.select_option("U0ALICE")
        await page.get_by_test_id("channel-C0DEPLOYS").click()
        await _send(page, "/deploy api 1.2.0")
        deploy = page.get_by_test_id("message").filter(has_text="Deploy api")
        approve = deploy.get_by_test_id("button").filter(has_text="Approve")
        await approve.wait_for(timeout=30_000)
        await picker.select_option("U0BOB")
        await approve.click()
        await deploy.filter(has_text="complete").wait_for(timeout=30_000)

        fired = await page.request.post(sandbox_url + "_sandbox/alert", data='{"action": "fire"}')
        assert (await fired.json())["status"] == 202, await fired.text()
        await page.get_by_test_id("channel-C0ALERTS").click()
        alert = page.get_by_test_id("message").filter(has_text="AL-1")
        await alert.filter(has_text="Last change").wait_for(timeout=15_000)
        text = await alert.inner_text()
        said = re.search(
            r"Last change: api 1\.2\.0 \(D-1\) by @alice, approved by @bob, "
            r"completed \S+ before the alert",
            text,
        )
        assert said, text
        roll_back = alert.get_by_test_id("button").filter(has_text="Roll back api")
        assert await roll_back.count() == 1
        if shot:
            await page.screenshot(path=shot.replace(".png", "-last-change.png"))

        # Bob is no deployer: told so, nothing changes. Alice rolls back.
        await roll_back.click()
        ephemerals = page.get_by_test_id("ephemeral")
        await ephemerals.filter(has_text="Only deployers").wait_for(timeout=15_000)
        await picker.select_option("U0ALICE")
        await roll_back.click()
        await alert.filter(has_text="rolled back by @alice").wait_for(timeout=30_000)
        assert await roll_back.count() == 0
        await alert.get_by_test_id("replies-link").click()
        pane = page.get_by_test_id("thread-pane")
        reply = pane.get_by_test_id("thread-reply").filter(has_text="is rolling api back")
        await reply.wait_for(timeout=15_000)
        if shot:
            await page.screenshot(path=shot)
        assert await alert.count() == 1  # the same message, edited in place
        assert not errors, errors
