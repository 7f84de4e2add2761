"""Each deploy step becomes one Grafana annotation, tagged with the service and version.

Any deployer: the test plugin "reel" of tests/test_plugins.py deploys, the Grafana emulator
holds the annotations. A re-run of the same step's job adds nothing; Grafana away delays the
mark, never the deploy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import yaml

from bot.config_load import parse_config
from bot.deploys.dashboard_marks import ANNOTATE_JOB
from bot.once import marker
from bot.sandbox.emulators.grafana import GrafanaEmulator
from tests.harness import BotUnderTest, running_bot
from tests.test_plugins import WITH_REEL, WORLD, YAML, deploy_message
from tests.waiting import eventually


@asynccontextmanager
async def deploying(emu: GrafanaEmulator, redis_url: str) -> AsyncIterator[BotUnderTest]:
    WORLD.clear()
    config = parse_config(yaml.safe_load(YAML), plugins=WITH_REEL)
    async with (
        emu.serve() as url,
        running_bot(
            redis_url,
            config=config,
            plugins=WITH_REEL,
            OPSLOOP_GRAFANA_URL=url,
            OPSLOOP_GRAFANA_TOKEN=emu.token,
        ) as bot,
    ):
        yield bot


def _looked_up(emu: GrafanaEmulator, tag: str) -> bool:
    return any(r.method == "GET" and tag in r.query for r in emu.requests)


def texts(emu: GrafanaEmulator) -> list[str]:
    return [a["text"] for a in emu.annotations]


async def test_each_step_is_annotated_once_with_service_and_version(redis_url: str) -> None:
    emu = GrafanaEmulator()
    async with deploying(emu, redis_url) as bot:
        await bot.driver.command("/deploy", "shop 1", user="U0ALICE")  # first: full size
        await eventually(lambda: len(emu.annotations) == 1, what="the first annotation")
        first = emu.annotations[0]
        assert first["text"].startswith("shop 1 deployed (D-1")
        assert first["tags"][:3] == ["opsloop", "service:shop", "version:1"]

        await bot.driver.command("/deploy", "shop 2", user="U0ALICE")
        await eventually(lambda: "Approve" in deploy_message(bot), what="the approval request")
        await eventually(lambda: len(emu.annotations) == 2, what="the 25% step's annotation")
        assert texts(emu)[1] == "shop 2: step 1 of 2, 25% (D-2)"
        await bot.driver.click("Approve", user="U0BOB", channel="C0DEPLOYS")
        await eventually(lambda: len(emu.annotations) == 3, what="the last step's annotation")
        assert texts(emu)[2].startswith("shop 2 deployed (D-2")
        assert all(r.authorized for r in emu.requests)

        # The same step's job run again after it recorded its mark: nothing new.
        payload: dict[str, Any] = {"service": "shop", "version": "2", "text": "again", "at": 0.0}
        await bot.deps.queue.enqueue(
            ANNOTATE_JOB, {**payload, "key": "D-2:complete:1"}, job_id="r1"
        )
        # A run that died after Grafana added its mark, before recording it: its re-run finds
        # the mark by its marker tag instead of adding a second one.
        key = "D-9:complete:1"
        await bot.deps.store.effects.intend(f"annotate:{key}", {})
        emu.annotations.append(
            {"id": 99, "time": 0, "tags": ["opsloop", marker(f"annotate:{key}")], "text": "made"}
        )
        await bot.deps.queue.enqueue(ANNOTATE_JOB, {**payload, "key": key}, job_id="r2")
        await eventually(lambda: _looked_up(emu, marker(f"annotate:{key}")), what="the look-up")
        await asyncio.sleep(0.5)
        assert len(emu.annotations) == 4, texts(emu)
        assert len([r for r in emu.requests if r.method == "POST"]) == 3


async def test_grafana_away_delays_the_annotation_never_the_deploy(redis_url: str) -> None:
    emu = GrafanaEmulator()
    async with deploying(emu, redis_url) as bot:
        emu.fail(503, times=1)
        await bot.driver.command("/deploy", "shop 1", user="U0ALICE")
        await eventually(lambda: "complete" in deploy_message(bot), what="the deploy")
        assert emu.annotations == []
        await eventually(lambda: len(emu.annotations) == 1, within=15, what="the late mark")
        await asyncio.sleep(0.5)
        assert len(emu.annotations) == 1


async def test_opsloop_check_probes_grafana_and_its_token() -> None:
    from bot.config_file import OpsConfig
    from bot.plugins import Systems
    from bot.settings import load_settings
    from integrations import PLUGINS

    emu = GrafanaEmulator()
    async with emu.serve() as url:
        for token, ok in ((emu.token, True), ("glsa_wrong", False)):
            settings = load_settings(
                OPSLOOP_CONFIG_FILE=None, OPSLOOP_GRAFANA_URL=url, OPSLOOP_GRAFANA_TOKEN=token
            )
            systems = Systems.start(settings, OpsConfig(), PLUGINS)
            try:
                said = await systems.started["grafana"].check()
                assert ok and said == url.removeprefix("http://") + " answers"
            except RuntimeError as e:
                assert not ok and "token was rejected (401)" in str(e)
                assert "glsa_wrong" not in str(e)
            finally:
                await systems.close()
