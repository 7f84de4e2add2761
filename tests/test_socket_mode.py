"""`opsloop socket`: the bot over Slack Socket Mode, as a real process against the emulator.

The process calls apps.connections.open with its app-level token, connects to the emulator's
WebSocket and acks envelopes; jobs run in its in-process worker and answer via response_url.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from bot.sandbox.emulators.slack import SlackDriver, SlackEmulator
from tests.harness import running_emulator
from tests.servers import free_port
from tests.test_processes import REPO, clean_env, opsloop
from tests.waiting import eventually


@dataclass
class SocketBot:
    emulator: SlackEmulator
    driver: SlackDriver
    process: subprocess.Popen[bytes]
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def socket_env(emu: SlackEmulator, redis_url: str, port: int, **values: str) -> dict[str, str]:
    settings = {
        "SLACK_BOT_TOKEN": emu.bot_token,
        "SLACK_APP_TOKEN": emu.app_token,
        "OPSLOOP_SLACK_API_URL": emu.api_url,
        "OPSLOOP_REDIS_URL": redis_url,
        "OPSLOOP_PORT": str(port),
    }
    return clean_env(**{**settings, **values})


@contextmanager
def stopped_on_exit(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """SIGTERMs the process when the block ends, whatever happened in it."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@asynccontextmanager
async def socket_bot(redis_url: str, *, stderr: Path | None = None) -> AsyncIterator[SocketBot]:
    """`opsloop socket` connected to a fresh emulator; stopped (SIGTERM) at the end.

    `stderr`: a file for the process's log, else it goes to the test's own stderr.
    """
    port = free_port()
    async with running_emulator() as emu, AsyncExitStack() as stack:
        env = socket_env(emu, redis_url, port)
        err = stack.enter_context(stderr.open("wb")) if stderr is not None else None
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "socket"], env=env, cwd=REPO, stderr=err
        )
        with stopped_on_exit(proc):
            connected = await emu.socket.wait_for_client(within=30)
            assert connected, f"opsloop socket never connected (exit code {proc.poll()})"
            async with SlackDriver(emu, transport="socket") as driver:
                yield SocketBot(emu, driver, proc, port)


def ephemeral_texts(emu: SlackEmulator, user: str = "U0ALICE") -> list[str]:
    return [e.text for e in emu.ephemerals(user=user)]


@pytest.mark.timeout(60)  # about 12 s: a real `opsloop socket` process, and Slack's retries
async def test_commands_clicks_and_retries_over_the_socket(redis_url: str) -> None:
    async with socket_bot(redis_url) as bot:
        emu, driver = bot.emulator, bot.driver
        opens = [c for c in emu.calls if c.method == "apps.connections.open"]
        assert len(opens) == 1 and opens[0].ok and emu.socket.connects == 1

        # /ops help: acked in time with no payload; the worker answers via response_url.
        resp = await driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")
        assert resp.ok, resp.note
        assert resp.elapsed_ms < 3000 and resp.body == ""
        texts = await eventually(lambda: ephemeral_texts(emu), what="the help reply")
        assert "/ops status" in texts[0] and "/ops audit" in texts[0]
        assert [c.ok for c in emu.calls if c.method == "response_url"] == [True]
        delivery = emu.deliveries[-1]
        assert (delivery.kind, delivery.transport, delivery.status) == ("command", "socket", 200)
        envelope = json.loads(delivery.body)
        assert envelope["type"] == "slash_commands" and envelope["accepts_response_payload"]
        assert envelope["payload"]["text"] == "help" and "retry_attempt" not in envelope

        # A usage error comes back in the ack's payload and is shown as an ephemeral.
        bad = await driver.command("/ops", "audit nonsense", user="U0BOB", channel="C0GENERAL")
        assert bad.ok and bad.json is not None and bad.json["response_type"] == "ephemeral"
        assert "`nonsense` is not a number of entries from 1 to 100" in bad.json["text"]
        assert ephemeral_texts(emu, "U0BOB") == [bad.json["text"]]

        # A click on a button the bot posted: block_actions over the socket.
        await driver.command("/ops", "status", user="U0CAROL", channel="C0GENERAL")
        await eventually(lambda: ephemeral_texts(emu, "U0CAROL"), what="the status reply")
        click = await driver.click("Refresh", user="U0CAROL", channel="C0GENERAL")
        assert click.ok, click.note
        assert json.loads(emu.deliveries[-1].body)["type"] == "interactive"

        def refreshes() -> list[object]:
            return [
                c
                for c in emu.calls
                if c.method == "response_url" and c.args.get("replace_original") in (True, "true")
            ]

        await eventually(refreshes, what="the refreshed status")
        # Slack re-sends an envelope it thinks was lost; the bot must not act twice.
        replay = await driver.retry(click)
        assert replay.ok, replay.note
        sent = json.loads(emu.deliveries[-1].body)
        assert (sent["retry_attempt"], sent["retry_reason"]) == (1, "timeout")
        first = await driver.command("/ops", "audit", user="U0DAVE", channel="C0GENERAL")
        again = await driver.retry(first)
        assert first.ok and again.ok
        assert (
            json.loads(emu.deliveries[-1].body)["payload"]["trigger_id"]
            == (json.loads(emu.deliveries[-2].body)["payload"]["trigger_id"])
        )
        await eventually(lambda: ephemeral_texts(emu, "U0DAVE"), what="the audit reply")
        await asyncio.sleep(0.8)  # give a duplicate job every chance to show up
        assert len(ephemeral_texts(emu, "U0DAVE")) == 1
        assert len(refreshes()) == 1


async def test_socket_mode_still_serves_health_and_stops_on_sigterm(
    redis_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "stderr.log"
    async with socket_bot(redis_url, stderr=log) as bot, aiohttp.ClientSession() as http:
        for path in ("/healthz", "/readyz", "/metrics"):
            async with http.get(bot.base_url + path) as r:
                assert r.status == 200, path
        resp = await bot.driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")
        assert resp.ok
        # The envelope's ack is timed like an HTTP request's.
        async with http.get(bot.base_url + "/metrics") as r:
            metrics = await r.text()
        assert 'opsloop_slack_ack_seconds_count{kind="command"} 1.0' in metrics
        bot.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(bot.process.wait, 20)
        assert code == 0, log.read_text()
        # The connection goes away with the process.
        await eventually(lambda: not bot.emulator.socket.connected, what="the socket to close")
    assert bot.emulator.app_token not in log.read_text()
    assert bot.emulator.bot_token not in log.read_text()


async def test_sigterm_closes_the_socket_connection_cleanly(redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    async with socket_bot(redis_url, stderr=log) as bot:
        bot.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(bot.process.wait, 20)
    text = log.read_text()
    assert code == 0
    assert "Unclosed client session" not in text and "Traceback" not in text, text


async def test_socket_needs_an_app_level_token(redis_url: str) -> None:
    async with running_emulator() as emu:
        env = socket_env(emu, redis_url, free_port())
        del env["SLACK_APP_TOKEN"]
        code, out, err = await opsloop("socket", env=env)
        assert code == 2, out + err
        assert "SLACK_APP_TOKEN" in err and "Traceback" not in err

        env["SLACK_APP_TOKEN"] = emu.bot_token
        code, out, err = await opsloop("socket", env=env)
        assert code == 2, out + err
        assert "SLACK_APP_TOKEN" in err and "xapp-" in err and "Traceback" not in err
        assert emu.bot_token not in out + err
        assert not [c for c in emu.calls if c.method == "apps.connections.open"]


async def test_a_refused_app_token_stops_start_up(redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    async with running_emulator() as emu:
        env = socket_env(emu, redis_url, free_port(), SLACK_APP_TOKEN="xapp-1-revoked")
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "socket"], env=env, cwd=REPO, stderr=err
            )
            try:
                code = await asyncio.to_thread(proc.wait, 8)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    text = log.read_text()
    assert code == 2, f"still running after 8 s; log:\n{text[-2000:]}"
    assert "SLACK_APP_TOKEN" in text and "xapp-1-revoked" not in text
