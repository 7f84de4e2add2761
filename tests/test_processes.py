"""The console commands as a user runs them: manifest, check, serve."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import yaml

from bot.manifest import PLACEHOLDER_URL, manifest_yaml
from commands import FAMILIES, shortcuts
from tests.harness import running_emulator
from tests.servers import free_port
from tests.waiting import eventually

REPO = Path(__file__).resolve().parent.parent


def clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "SLACK_"))}
    env.update(PYTHONPATH=str(REPO), OPSLOOP_CONFIG_FILE=os.devnull, **values)
    return env


async def opsloop(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, env=env, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


def test_manifest_file_matches_the_registered_commands() -> None:
    expected = manifest_yaml([f.HELP for f in FAMILIES], PLACEHOLDER_URL, shortcuts())
    assert (REPO / "manifest.yml").read_text(encoding="utf-8") == expected, (
        "manifest.yml is stale: run `opsloop manifest --url https://opsloop.example.com`"
    )


async def test_manifest_needs_no_secrets_and_sets_the_urls() -> None:
    code, out, _ = await opsloop("manifest", "--url", "https://bot.example.com/", env=clean_env())
    assert code == 0
    data = yaml.safe_load(out)
    urls = {c["url"] for c in data["features"]["slash_commands"]}
    assert urls == {"https://bot.example.com/slack/events"}
    assert (
        data["settings"]["interactivity"]["request_url"] == "https://bot.example.com/slack/events"
    )
    assert {c["command"] for c in data["features"]["slash_commands"]} == {
        f.HELP.command for f in FAMILIES
    }


async def test_check_reaches_every_configured_system(redis_url: str) -> None:
    async with running_emulator() as emu:
        env = clean_env(
            SLACK_BOT_TOKEN=emu.bot_token,
            OPSLOOP_SLACK_API_URL=emu.api_url,
            OPSLOOP_REDIS_URL=redis_url,
        )
        code, out, err = await opsloop("check", env=env)
        assert code == 0, out + err
        lines = out.splitlines()
        assert any(line.startswith("ok") and "redis" in line for line in lines)
        assert any(line.startswith("ok") and "slack" in line for line in lines)

        dead = f"http://127.0.0.1:{free_port()}"
        env.update(
            SLACK_BOT_TOKEN="xoxb-wrong-token",
            OPSLOOP_GITLAB_URL=dead,
            OPSLOOP_GITLAB_TOKEN="glpat-secret-value",
        )
        code, out, err = await opsloop("check", env=env)
        assert code == 1
        assert any(line.startswith("FAIL") and "slack" in line for line in out.splitlines())
        assert any(line.startswith("FAIL") and "gitlab" in line for line in out.splitlines())
        assert "glpat-secret-value" not in out + err
        assert "xoxb-wrong-token" not in out + err
        assert "Traceback" not in out + err


async def test_serve_starts_answers_health_and_stops_cleanly(redis_url: str) -> None:
    port = free_port()
    async with running_emulator() as emu:
        env = clean_env(
            SLACK_BOT_TOKEN=emu.bot_token,
            SLACK_SIGNING_SECRET=emu.signing_secret,
            OPSLOOP_SLACK_API_URL=emu.api_url,
            OPSLOOP_REDIS_URL=redis_url,
            OPSLOOP_PORT=str(port),
        )
        proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env, cwd=REPO)
        try:
            async with aiohttp.ClientSession() as http:

                async def healthy() -> bool:
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                            return r.status == 200
                    except aiohttp.ClientError:
                        return False

                await eventually(healthy, within=20, what="opsloop serve to answer /healthz")
                emu.bot_events_url = f"http://127.0.0.1:{port}/slack/events"
                from bot.sandbox.emulators.slack import SlackDriver

                async with SlackDriver(emu) as driver:
                    resp = await driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")
                assert resp.status == 200
                await eventually(lambda: emu.ephemerals(user="U0ALICE"), what="the help reply")
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=20)
        assert code == 0
