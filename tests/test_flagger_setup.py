"""A Flagger service as an operator sets it up: its YAML (`deployer: flagger`), `opsloop check`,
`/ops status`, and what `/deploy` says about a canary that Flagger, not opsloop, starts."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config_load import parse_config
from bot.errors import SettingsError
from integrations.flagger.config import FlaggerService
from tests.harness import BotUnderTest
from tests.test_flagger_gate import CHANNEL, TOKEN, config, gate, gate_bot, says
from tests.waiting import eventually

REPO = Path(__file__).resolve().parent.parent
CONTRACT_EXAMPLE = """
services:
  checkout:
    deployer: flagger
    namespace: shop
    canary: checkout
    image: registry.example.com/acme/checkout
    approvals: 2
    channel: C0SHOP
"""


def checkout(**changes: Any) -> dict[str, Any]:
    data = yaml.safe_load(CONTRACT_EXAMPLE)
    data["services"]["checkout"].update(changes)
    return {k: v for k, v in data.items() if v is not None}


def refusal(**changes: Any) -> str:
    with pytest.raises(SettingsError) as e:
        parse_config(checkout(**changes))
    return str(e.value)


def test_the_contracts_example_parses_and_a_namespace_defaults_to_default() -> None:
    service = parse_config(checkout()).services["checkout"]
    assert isinstance(service, FlaggerService)
    assert (service.namespace, service.canary, service.approvals) == ("shop", "checkout", 2)
    assert service.image == "registry.example.com/acme/checkout"
    data = checkout()
    del data["services"]["checkout"]["namespace"]
    assert parse_config(data).services["checkout"].namespace == "default"  # type: ignore[attr-defined]


def test_keys_a_flagger_service_does_not_take_are_refused_by_their_path() -> None:
    assert "services.checkout.replicas: is not a known setting" in refusal(replicas=4)
    assert "services.checkout.rollout: is not a known setting" in refusal(rollout="checkout")
    steps = refusal(steps=[50, 100])
    assert "services.checkout" in steps and "takes no `steps`" in steps
    assert "services.checkout.canary" in refusal(canary=None)
    assert "needs `channel`" in refusal(channel=None)
    assert "is not a Kubernetes namespace" in refusal(namespace="Shop_1")
    assert "is not a Canary's name" in refusal(canary="Check/out")


def opsloop_check(redis_url: str, config_file: Path, **env: str) -> tuple[int, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "SLACK_"))}
    full.update(
        PYTHONPATH=str(REPO),
        OPSLOOP_REDIS_URL=redis_url,
        OPSLOOP_CONFIG_FILE=str(config_file),
        **env,
    )
    done = subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        env=full,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


async def test_opsloop_check_says_whether_the_webhook_token_is_set(
    redis_url: str, tmp_path: Path
) -> None:
    config_file = tmp_path / "opsloop.yml"
    config_file.write_text(CONTRACT_EXAMPLE, encoding="utf-8")
    env = {"OPSLOOP_FLAGGER_WEBHOOK_TOKEN": TOKEN}
    _, out = await asyncio.to_thread(opsloop_check, redis_url, config_file, **env)
    [line] = [x for x in out.splitlines() if "flagger" in x]
    assert line.startswith("ok") and "webhook token set" in line and "shop/checkout" in line, out
    assert TOKEN not in out
    code, out = await asyncio.to_thread(opsloop_check, redis_url, config_file)
    [line] = [x for x in out.splitlines() if "flagger" in x]
    assert code != 0 and line.startswith("FAIL"), out
    assert "OPSLOOP_FLAGGER_WEBHOOK_TOKEN is not set" in line


def ephemerals(bot: BotUnderTest, user: str) -> list[str]:
    return [e.text for e in bot.emulator.ephemerals(user=user)]


async def told(bot: BotUnderTest, user: str, words: str) -> str:
    found = await eventually(
        lambda: [t for t in ephemerals(bot, user) if words in t], what=f"{user} told {words!r}"
    )
    return str(found[-1])


async def test_deploy_says_how_a_flagger_canary_starts_and_status_names_flagger(
    redis_url: str,
) -> None:
    cfg = config(image="registry.example.com/acme/checkout")
    async with gate_bot(redis_url, cfg) as bot:
        await bot.driver.command("/deploy", "checkout 2.0", user="U0ALICE", channel=CHANNEL)
        said = await told(bot, "U0ALICE", "Flagger starts it")
        assert "shop/checkout" in said and "registry.example.com/acme/checkout:2.0" in said
        assert "opsloop asks for approval here when Flagger calls its gate" in said
        refused = await bot.driver.command("/deploy", "checkout 2.0/x", user="U0ALICE")
        assert "is not a version" in refused.body
        assert bot.emulator.messages(CHANNEL) == [], "nothing was started or posted"

        assert await gate(bot) == 403
        await says(bot, "Approve")
        await bot.driver.command("/deploy", "status checkout", user="U0ALICE", channel=CHANNEL)
        status = await told(bot, "U0ALICE", "D-1")
        assert "by flagger" in status and "waiting for approval at Flagger's" in status
        assert "<@flagger>" not in status

        await bot.driver.command("/ops", "status", user="U0ALICE", channel=CHANNEL)
        integrations = await told(bot, "U0ALICE", "Integrations")
        assert "Flagger gate on" in integrations
