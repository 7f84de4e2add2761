"""Outside systems are plugins: one list names them, importing it loads no SDK, and a system
added to the list (here a tiny one, defined below) is picked by `deployer:` in the YAML and
deploys through the signed HTTP path with nothing else changed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import Field

from bot.config_file import OpsConfig
from bot.config_load import parse_config
from bot.config_types import Service
from bot.deploys.ports import (
    Deployer,
    RolloutView,
    ServiceSettings,
    Snapshot,
    Unit,
    VersionRule,
    plan,
)
from bot.errors import SettingsError
from bot.plugins import DeployerKind, Plugin, Provided, Systems
from bot.settings import Settings, load_settings
from integrations import PLUGINS
from tests.harness import BotUnderTest, running_bot
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parent.parent
SDKS = ("gitlab", "docker", "requests", "kubernetes_asyncio")
CHANNEL = "C0DEPLOYS"


def test_the_list_names_each_system_once() -> None:
    names = [p.name for p in PLUGINS]
    assert names == [
        "gitlab",
        "docker",
        "alertmanager",
        "kubernetes",
        "flagger",
        "prometheus",
        "jenkins",
        "grafana",
        "jira",
    ]
    kinds = [k.name for p in PLUGINS for k in p.deployers]
    assert sorted(kinds) == ["docker", "flagger", "gitlab", "kubernetes"]


def test_no_file_outside_integrations_names_a_system_module() -> None:
    """Only integrations/__init__.py picks the systems; the families and the wiring reach them
    through the plugins (the sandbox, which emulates them, and the tests may)."""
    mentions = re.compile(r"\bintegrations\.(gitlab|docker|alertmanager|kubernetes|flagger|jira)\b")
    found = [
        str(path.relative_to(ROOT))
        for folder in ("bot", "commands")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if not path.is_relative_to(ROOT / "bot" / "sandbox") and mentions.search(path.read_text())
    ]
    assert found == []


def run_python(code: str, **env: str) -> str:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "SLACK_"))}
    full_env.update(env, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_importing_the_bot_and_its_plugins_loads_no_sdk() -> None:
    out = run_python(
        f"""
        import sys
        import bot.cli, bot.app, bot.runtime, integrations
        print([m for m in {SDKS!r} if m in sys.modules])
        """
    )
    assert out.strip() == "[]"


def test_python_gitlab_is_loaded_by_the_runtime_that_uses_it(redis_url: str) -> None:
    out = run_python(
        """
        import asyncio, sys
        from bot.config_load import load_config
        from bot.runtime import Runtime
        from bot.settings import load_settings

        settings = load_settings()
        config = load_config(settings)
        print("gitlab" in sys.modules)
        runtime = Runtime.start(settings, config)
        print("gitlab" in sys.modules, "docker" in sys.modules)
        asyncio.run(runtime.close())
        """,
        OPSLOOP_REDIS_URL=redis_url,
        OPSLOOP_GITLAB_URL="http://127.0.0.1:9",
        OPSLOOP_GITLAB_TOKEN="glpat-not-a-secret",
    )
    assert out.split() == ["False", "True", "False"]


def test_kubernetes_asyncio_is_loaded_only_for_a_kubernetes_service(
    redis_url: str, tmp_path: Path
) -> None:
    """Started for a `deployer: kubernetes` service, the plugin still loads its client only
    when it first calls the cluster; a process without such a service never does."""
    config = tmp_path / "opsloop.yml"
    config.write_text(
        "services:\n  shop: {deployer: kubernetes, rollout: shop}\n", encoding="utf-8"
    )
    code = """
        import asyncio, sys
        from bot.config_load import load_config
        from bot.runtime import Runtime
        from bot.settings import load_settings

        settings = load_settings()
        runtime = Runtime.start(settings, load_config(settings))
        print("kubernetes_asyncio" in sys.modules)

        async def deploy() -> None:
            deployer = runtime.deps.deployers.make("shop", runtime.deps.config.services["shop"], 5)
            try:
                await deployer.running_versions()
            except Exception as e:
                print(type(e).__name__)
            await runtime.close()

        asyncio.run(deploy())
        print("kubernetes_asyncio" in sys.modules)
        """
    out = run_python(
        code,
        OPSLOOP_REDIS_URL=redis_url,
        OPSLOOP_CONFIG_FILE=str(config),
        OPSLOOP_KUBECONFIG=str(tmp_path / "no-such-kubeconfig"),
    )
    assert out.split() == ["False", "IntegrationError", "True"]
    without = run_python(
        code.split('        print("kubernetes_asyncio" in sys.modules)')[0]
        + "        print('kubernetes_asyncio' in sys.modules)\n",
        OPSLOOP_REDIS_URL=redis_url,
    )
    assert without.split() == ["False"]


# -- a system added to the list: "reel", whose deployer keeps its units in memory ------------


class ReelService(Service):
    """`deployer: reel`: `size` units at 100%."""

    deployer: Literal["reel"]
    size: int = Field(default=2, ge=1)


REEL_VERSIONS = VersionRule(re.compile(r"[0-9]+(\.[0-9]+)*"), "a reel takes numbers and dots")


class ReelDeployer:
    """Runs a service's units in a dict, by count, as a container engine would."""

    kind = "reel"

    def __init__(self, name: str, service: ServiceSettings, world: dict[str, dict[str, int]]):
        if not isinstance(service, ReelService):
            raise ValueError("a reel service needs a size")
        self.name, self.service, self.world = name, service, world

    @staticmethod
    def validate_version(version: str) -> None:
        REEL_VERSIONS.check(version)

    async def running_versions(self) -> dict[str, int]:
        return dict(self.world.get(self.name, {}))

    def planned(self, rollout: RolloutView, step: int) -> dict[str, int]:
        return {v: n for v, n in plan(rollout, step, self.service.size).items() if n}

    async def prepare(self, rollout: RolloutView) -> dict[str, Any]:
        return {}

    async def apply(self, rollout: RolloutView, step: int) -> None:
        self.world[self.name] = self.planned(rollout, step)

    async def revert(self, rollout: RolloutView) -> None:
        self.world[self.name] = self.planned(rollout, -1)

    async def retry(self, rollout: RolloutView) -> None:
        pass

    async def snapshot(self, rollout: RolloutView | None) -> Snapshot:
        units = [
            Unit(name=f"{self.name}-{version}-{n}", version=version, status="spinning", ok=True)
            for version, count in sorted(self.world.get(self.name, {}).items())
            for n in range(count)
        ]
        return Snapshot(units=tuple(units))


WORLD: dict[str, dict[str, int]] = {}


def _reel_start(settings: Settings, config: OpsConfig) -> Provided:
    def make(name: str, service: ServiceSettings, step_timeout: float) -> Deployer:
        return ReelDeployer(name, service, WORLD)

    async def check() -> str:
        return "the reel turns"

    return Provided(status="Reel used by a service", check=check, deployers={"reel": make})


REEL = Plugin(
    name="reel",
    configured=lambda settings, config: any(s.deployer == "reel" for s in config.services.values()),
    start=_reel_start,
    status_when_off="Reel not used",
    deployers=(DeployerKind("reel", ReelService, REEL_VERSIONS, "Reel is not configured."),),
)
WITH_REEL: Sequence[Plugin] = (*PLUGINS, REEL)  # the one line a new system adds

YAML = f"""
roles: {{deployers: [U0ALICE], approvers: [U0BOB]}}
services:
  shop:
    deployer: reel
    size: 4
    steps: [25, 100]
    channel: {CHANNEL}
"""


def test_the_yaml_knows_a_deployer_only_when_its_plugin_is_listed() -> None:
    config = parse_config(yaml.safe_load(YAML), plugins=WITH_REEL)
    shop = config.services["shop"]
    assert isinstance(shop, ReelService) and shop.size == 4
    with pytest.raises(SettingsError) as e:
        parse_config(yaml.safe_load(YAML))
    assert str(e.value) == (
        "services.shop.deployer: 'reel' is not a deployer opsloop knows "
        "(known: docker, flagger, gitlab, kubernetes)"
    )
    with_image = YAML.replace("size: 4", "size: 4\n    image: x")
    with pytest.raises(SettingsError) as e:
        parse_config(yaml.safe_load(with_image), plugins=WITH_REEL)
    assert str(e.value) == "services.shop.image: is not a known setting (check the spelling)"


def test_systems_start_only_the_configured_plugins() -> None:
    config = parse_config(yaml.safe_load(YAML), plugins=WITH_REEL)
    systems = Systems.start(load_settings(OPSLOOP_CONFIG_FILE=None), config, WITH_REEL)
    assert list(systems.started) == ["reel"]
    assert systems.status() == [
        "GitLab not configured",
        "Docker not used",
        "Alertmanager not configured",
        "Kubernetes not used",
        "Flagger not used",
        "Prometheus not configured (approvals carry no evidence)",
        "Jenkins not configured",
        "Grafana not configured",
        "Jira not configured",
        "Reel used by a service",
    ]
    assert systems.tasks is None and systems.missing("tasks").startswith("GitLab is not config")


def ephemerals(bot: BotUnderTest, user: str) -> list[str]:
    return [e.text for e in bot.emulator.ephemerals(user=user)]


def deploy_message(bot: BotUnderTest) -> str:
    found = [m for m in bot.emulator.messages(CHANNEL) if m.text.startswith("Deploy shop")]
    return found[-1].text + json.dumps(found[-1].blocks) if found else ""


async def test_a_listed_plugin_deploys_through_the_bot(redis_url: str) -> None:
    WORLD.clear()
    config = parse_config(yaml.safe_load(YAML), plugins=WITH_REEL)
    async with running_bot(redis_url, config=config, plugins=WITH_REEL) as bot:
        refused = await bot.driver.command("/deploy", "shop v2", user="U0ALICE")
        assert "`v2` is not a version: a reel takes numbers and dots" in refused.body

        await bot.driver.command("/deploy", "shop 1", user="U0ALICE")  # first: full size
        await eventually(lambda: WORLD.get("shop") == {"1": 4}, what="the first deploy")
        await eventually(lambda: "complete" in deploy_message(bot), what="its message")

        await bot.driver.command("/deploy", "shop 2", user="U0ALICE")
        await eventually(lambda: WORLD.get("shop") == {"2": 1, "1": 3}, what="the 25% step")
        await eventually(lambda: "Approve" in deploy_message(bot), what="the approval request")
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await eventually(lambda: WORLD.get("shop") == {"2": 4}, what="the 100% step")
        await eventually(
            lambda: "complete" in deploy_message(bot) and "shop-2-3" in deploy_message(bot),
            what="the message to show the reel's units",
        )

        await bot.driver.command("/ops", "status", user="U0ALICE")
        status = await eventually(
            lambda: [t for t in ephemerals(bot, "U0ALICE") if "Integrations" in t],
            what="/ops status",
        )
        assert (
            "Alertmanager not configured, Kubernetes not used, Flagger not used, "
            "Prometheus not configured (approvals carry no evidence), Jenkins not configured, "
            "Grafana not configured, Jira not configured, "
            "Reel used by" in (status[0])
        )


async def test_the_ack_checks_a_version_without_the_deployers_system(redis_url: str) -> None:
    """An unknown service, or one whose system is not configured, still has its version
    checked in the ack, by the rule of its kind (or of every kind) and nothing slower."""
    api = {"deployer": "gitlab", "project": "acme/api", "channel": CHANNEL}
    config = parse_config({"roles": {"deployers": ["U0ALICE"]}, "services": {"api": api}})
    async with running_bot(redis_url, config=config) as bot:  # GitLab is not configured
        for text in ("api 1.4/2", "nosuch 1.4/2"):
            refused = await bot.driver.command("/deploy", text, user="U0ALICE")
            assert "`1.4/2` is not a version: a Docker tag is" in refused.body, text
        await bot.driver.command("/deploy", "api 1.4.2", user="U0ALICE")
        told = await eventually(
            lambda: [t for t in ephemerals(bot, "U0ALICE") if "OPSLOOP_GITLAB_URL" in t],
            what="the job's answer",
        )
        assert "api deploys through GitLab, which is not configured" in told[0], told
