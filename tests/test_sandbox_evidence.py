"""The sandbox's canary carries evidence from its emulated Prometheus: `api` 1.2.0 deployed,
then 1.3.0-bad regresses and Bob's Approve is refused with the numbers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from tests.test_sandbox_deploys import (
    ALICE,
    BOB,
    DEPLOYS,
    NO_DOCKER,
    Json,
    Page,
    block_text,
    sandbox,
)


async def showing(page: Page, version: str, words: str, seconds: float = 30) -> Json:
    """The #deploys message about `version` once its blocks show `words`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for m in (await page.state())["messages"].get(DEPLOYS, []):
            if f"`{version}`" in m["text"] + block_text(m) and words in block_text(m):
                return m
        await asyncio.sleep(0.2)
    texts = "\n---\n".join(block_text(m) for m in (await page.state())["messages"][DEPLOYS])
    pytest.fail(f"no #deploys message for {version} showing {words!r}:\n{texts}")


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_the_sandbox_canary_shows_numbers_and_refuses_a_regressed_one(
    tmp_path: Path,
) -> None:
    with sandbox(tmp_path, NO_DOCKER) as box:
        assert any("1.3.0-bad" in line for line in box.start_lines()), box.start_lines()
        async with aiohttp.ClientSession() as http:
            page = Page(http, box)
            await page.command(ALICE, "api 1.2.0")
            first = await showing(page, "1.2.0", "no stable version to compare the canary with")
            await page.click(BOB, first, "deploy_approve")
            await page.deploy_message("1.2.0", says="complete")

            await page.command(ALICE, "api 1.3.0-bad")
            bad = await showing(page, "1.3.0-bad", "worse than stable by more than 20%")
            shown = block_text(bad)
            assert "canary `1.3.0-bad` vs stable `1.2.0`, measured <!date^" in shown, shown
            assert "`p99_seconds`: canary" in shown, shown
            await page.click(BOB, bad, "deploy_approve")
            refusal = await page.ephemeral(BOB, "Approve is refused")
            assert "`error_rate` is" in refusal and "(+200%, more than the 20% allowed)" in refusal
