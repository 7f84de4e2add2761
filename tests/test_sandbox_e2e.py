"""`opsloop sandbox` as a newcomer runs it, used through its page in a real browser."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import open_page, require_browser
from tests.servers import free_port

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def sandbox_url(tmp_path: Path) -> Iterator[str]:
    require_browser()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "SLACK_"))}
    env.update(PYTHONPATH=str(REPO), OPSLOOP_DATA_DIR=str(tmp_path / "data"))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "sandbox", "--port", str(port)],
        env=env,
        cwd=tmp_path,  # no opsloop.yml or .env of the developer's
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "open http://" in line:
                url = re.search(r"http://\S+/", line)
                assert url is not None
                assert url.group(0) == f"http://127.0.0.1:{port}/"
                break
        else:
            pytest.fail(f"opsloop sandbox exited with {proc.wait()} before printing its URL")
        yield url.group(0)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()
        assert code == 0
    # The embedded Redis it started is stopped with it.
    with socket.socket(socket.AF_UNIX) as s, pytest.raises(OSError):
        s.connect(str(tmp_path / "data" / "sandbox" / "redis.sock"))


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
        assert "escalates to @S0SRE (bob)" in await controls.inner_text()
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
