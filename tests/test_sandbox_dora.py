"""`/ops dora` in the sandbox answers from the sandbox's own history: Alice deploys api 1.2.0 and
then 1.2.1, Bob approves each, and the figures count both deployments, measure the second's
lead time from the emulated GitLab's commits between the two tags, and say why the first (a
first deploy) has none."""

from __future__ import annotations

import re

import pytest

from tests.browser import open_page
from tests.test_sandbox_e2e import sandbox_url  # noqa: F401  (the fixture)
from tests.test_sandbox_first_hour_tasks import PHONE, _send

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(150)]


async def test_ops_dora_answers_from_the_sandboxs_own_deploys(sandbox_url: str) -> None:  # noqa: F811
    async with open_page(sandbox_url, width=PHONE["width"], height=PHONE["height"]) as (
        page,
        errors,
    ):
        picker = page.get_by_test_id("user-picker")
        await page.get_by_test_id("channel-C0DEPLOYS").click()
        for n, version in enumerate(["1.2.0", "1.2.1"], start=1):
            await picker.select_option("U0ALICE")
            await _send(page, f"/deploy api {version}")
            deploy = page.get_by_test_id("message").filter(has_text=f"D-{n}")
            approve = deploy.get_by_test_id("button").filter(has_text="Approve")
            await approve.wait_for(timeout=30_000)
            await picker.select_option("U0BOB")
            await approve.click()
            await deploy.filter(has_text="complete").wait_for(timeout=30_000)

        await _send(page, "/ops dora api")
        answer = page.get_by_test_id("ephemeral").filter(has_text="Delivery figures")
        await answer.wait_for(timeout=15_000)
        text = await answer.inner_text()
        assert "Delivery figures, last 30 days" in text, text
        assert re.search(r"api\W+2 deployments", text), text
        # 1.2.1's oldest commit ("Cache the price list") is about 26 h older than its rollout.
        assert "lead time 1d 2h (p90 1d 2h, 1 measured)" in text, text
        assert "Lead time not measured for 1 rollout" in text, text
        assert "D-1" in text and "first deploy" in text, text
        assert not errors, errors
