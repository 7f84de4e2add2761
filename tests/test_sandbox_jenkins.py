"""`/build legacy` in `opsloop sandbox`: the sample project builds on the emulated Jenkins, whose
Notification plugin tells the bot, as a newcomer sees it through the page's control routes."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest

from tests.test_sandbox_deploys import NO_DOCKER, Json, Page, block_text, sandbox

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
LEGACY = "C0LEGACY"


async def legacy_message(page: Page, says: str, seconds: float = 45) -> Json:
    deadline = time.monotonic() + seconds
    last: list[Json] = []
    while time.monotonic() < deadline:
        last = (await page.state())["messages"].get(LEGACY, [])
        for message in last:
            if says in block_text(message) and message.get("replies"):
                return message
        await asyncio.sleep(0.3)
    pytest.fail(f"no #legacy message saying {says!r}: {[block_text(m) for m in last]}")


async def test_build_legacy_on_the_emulated_jenkins(tmp_path: Path) -> None:
    with sandbox(tmp_path, NO_DOCKER) as box:
        assert any("emulated Jenkins" in line for line in box.output), box.output
        async with aiohttp.ClientSession() as http:
            page = Page(http, box)
            answer = await page._post(
                "/_emulator/command",
                {
                    "user": "U0CAROL",
                    "channel": LEGACY,
                    "command": "/build",
                    "text": "legacy develop",
                },
            )
            assert answer["status"] == 200, answer
            done = await legacy_message(page, "*passed*")
            shown = block_text(done) + json.dumps(done["blocks"])
            assert "folder/legacy-build" in shown and "Checkout" in shown and "Test" in shown
            assert any("Tests: 12 passed" in r["text"] for r in done["replies"]), done["replies"]
