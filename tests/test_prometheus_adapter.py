"""The Measures port over a real Prometheus (integrations/prometheus/), the `analysis` keys of
the YAML file, how a canary is judged against stable, and the one chain that measures it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from bot.check import run_checks
from bot.config_load import parse_config
from bot.deploys.evidence import judge, substitute
from bot.errors import IntegrationError, SettingsError
from bot.redis_conn import connect
from bot.settings import load_settings
from bot.store import Store
from integrations.prometheus.client import PrometheusClient
from tests.harness import start_site
from tests.metrics_exporter import Exporter, running_exporter
from tests.prometheus_server import PrometheusServer, prometheus_binary
from tests.servers import free_port, missing
from tests.waiting import eventually


@pytest.fixture
async def scraped(tmp_path: Path) -> AsyncIterator[tuple[PrometheusServer, Exporter]]:
    binary = prometheus_binary()
    if binary is None:
        missing("prometheus is not installed (apt-get install prometheus)")
    assert binary is not None
    server = PrometheusServer(binary, tmp_path)
    async with running_exporter() as exporter:
        exporter.set("app_error_ratio", 0.02, service="api", version="1")
        exporter.set("app_error_ratio", 0.04, service="api", version="2")
        server.start(target=exporter.target, rule_files=[])
        try:
            await eventually(
                lambda: server.query("app_error_ratio"), within=20, what="the first scrape"
            )
            yield server, exporter
        finally:
            server.stop()


@pytest.mark.timeout(60)
async def test_an_instant_query_gives_one_number_or_nothing(
    scraped: tuple[PrometheusServer, Exporter],
) -> None:
    server, _ = scraped
    client = PrometheusClient(server.url)
    try:
        assert await client.value('max(app_error_ratio{version="2"})') == 0.04
        assert await client.value("1.5") == 1.5  # a scalar
        assert await client.value('max(app_error_ratio{version="9"})') is None  # empty
        assert await client.value("0/0") is None  # NaN
        with pytest.raises(IntegrationError, match="gave 2 series, not one number"):
            await client.value("app_error_ratio")
        with pytest.raises(IntegrationError) as refused:
            await client.value("max(")
        assert refused.value.system == "Prometheus"
        assert "Prometheus refused the query (bad_data)" in refused.value.message
        assert (await client.ready()).startswith(f"127.0.0.1:{server.port} answers, Prometheus ")
    finally:
        await client.close()


@pytest.mark.timeout(60)
async def test_opsloop_check_probes_prometheus(
    scraped: tuple[PrometheusServer, Exporter], redis_url: str
) -> None:
    server, _ = scraped
    settings = load_settings(
        OPSLOOP_PROMETHEUS_URL=server.url, OPSLOOP_REDIS_URL=redis_url, OPSLOOP_CONFIG_FILE=None
    )
    lines = await run_checks(settings, parse_config({}))
    [line] = [line for line in lines if line.system == "prometheus"]
    assert line.ok and "answers, Prometheus" in line.detail, line


async def test_an_unreachable_or_silent_prometheus_fails_fast_without_its_credentials() -> None:
    port = free_port()
    client = PrometheusClient(f"http://watcher:s3cret@127.0.0.1:{port}", timeout=0.5)
    try:
        with pytest.raises(IntegrationError) as gone:
            await client.value("up")
        assert gone.value.message == f"Prometheus at 127.0.0.1:{port} is unreachable"
        assert "s3cret" not in str(gone.value)
    finally:
        await client.close()

    done = asyncio.Event()

    async def silent(_: web.Request) -> web.Response:
        await done.wait()
        return web.Response()

    app = web.Application()
    app.router.add_get("/api/v1/query", silent)
    runner, url = await start_site(app)
    client = PrometheusClient(url, timeout=0.5)
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(IntegrationError, match=r"did not answer within 0\.5 s"):
            await client.value("up")
        assert asyncio.get_running_loop().time() - started < 2
    finally:
        done.set()
        await client.close()
        await runner.cleanup()


def test_a_bad_prometheus_url_is_named_without_its_password() -> None:
    with pytest.raises(SettingsError) as e:
        load_settings(OPSLOOP_PROMETHEUS_URL="ftp://watcher:s3cret@prometheus:9090")
    assert "OPSLOOP_PROMETHEUS_URL: must be an http:// or https:// URL" in str(e.value)
    assert "s3cret" not in str(e.value)


def test_placeholders_are_substituted_as_string_contents() -> None:
    query = 'rate(x{app="$service",version="$version",ns="$namespace",v2="$versions"}[1m])'
    values = {"service": "api", "version": '1"x', "namespace": ""}
    assert substitute(query, values) == (
        'rate(x{app="api",version="1\\"x",ns="",v2="$versions"}[1m])'
    )


@pytest.mark.parametrize(
    ("canary", "stable", "verdict", "regression"),
    [
        (0.04, 0.02, "worse", 1.0),
        (0.024, 0.02, "ok", pytest.approx(0.2)),  # exactly the limit is allowed
        (0.01, 0.02, "ok", -0.5),
        (0.0, 0.0, "ok", 0.0),
        (0.001, 0.0, "worse", "inf"),  # no ratio to allow: any value above 0 is worse
        (None, 0.02, "unknown", None),
    ],
)
def test_the_canary_is_judged_against_stable(
    canary: float | None, stable: float | None, verdict: str, regression: Any
) -> None:
    assert judge(canary, stable, 0.2) == (verdict, regression)


SERVICE = """
services:
  api:
    deployer: docker
    image: registry.example.com/acme/api
    analysis:
"""


@pytest.mark.parametrize(
    ("analysis", "said"),
    [
        (
            {"queries": {"error_rate": "up"}, "max_regression": "twenty"},
            "services.api.analysis.max_regression: 'twenty' is not a percentage; write it with "
            "%, e.g. 20%",
        ),
        (
            {"queries": {"error_rate": "up"}, "max_regression": 20},
            "services.api.analysis.max_regression: 20 is not a percentage",
        ),
        (
            {"queries": {"error_rate": "up"}, "max_regression": 0.2},
            "services.api.analysis.max_regression: 0.2 is not a percentage",
        ),
        (
            {"queries": {"error_rate": "up"}, "max_regression": "-5%"},
            "services.api.analysis.max_regression: must be from 0% to 1000%, got '-5%'",
        ),
        (
            {"queries": {"error_rate": "up"}, "required": ["latency"]},
            "services.api.analysis: required names latency, which are not among the queries "
            "(error_rate)",
        ),
        ({"queries": {}}, "services.api.analysis.queries: needs at least one query"),
        ({"queries": {"error rate": "up"}}, "'error rate' is not a query name"),
        ({"queries": {"error_rate": " "}}, "query 'error_rate' is empty"),
        ({"max_regression": "20%"}, "services.api.analysis.queries"),
    ],
)
def test_bad_analysis_settings_are_named(analysis: dict[str, Any], said: str) -> None:
    data = yaml.safe_load(SERVICE)
    data["services"]["api"]["analysis"] = analysis
    with pytest.raises(SettingsError) as e:
        parse_config(data)
    assert said in str(e.value), str(e.value)


def test_analysis_defaults_to_twenty_percent_and_reads_percentages() -> None:
    data = yaml.safe_load(SERVICE)
    data["services"]["api"]["analysis"] = {"queries": {"error_rate": "up"}}
    assert parse_config(data).services["api"].analysis.max_regression == 0.2  # type: ignore[union-attr]
    data["services"]["api"]["analysis"]["max_regression"] = "12.5%"
    assert parse_config(data).services["api"].analysis.max_regression == 0.125  # type: ignore[union-attr]


async def test_one_measuring_chain_per_service_across_replicas(redis_url: str) -> None:
    a, b = Store(connect(redis_url)), Store(connect(redis_url))  # two replicas
    try:
        assert await a.deploys.keep_measuring("api", "D-1", "t1", 5)
        assert not await b.deploys.keep_measuring("api", "D-1", "resume", 5), "one chain"
        assert await a.deploys.keep_measuring("api", "D-1", "t1", 5), "its holder keeps it"
        # A chain of a newer rollout takes over at once; the older one then stops.
        assert await b.deploys.keep_measuring("api", "D-2", "t0", 5)
        assert not await a.deploys.keep_measuring("api", "D-2", "t1", 5)
        await a.deploys.stop_measuring("api", "D-1", "t1")  # not its claim: nothing changes
        assert not await a.deploys.keep_measuring("api", "D-2", "other", 5)
        await b.deploys.stop_measuring("api", "D-2", "t0")
        assert await a.deploys.keep_measuring("api", "D-2", "other", 5), "released"
        assert await a.deploys.keep_measuring("web", "D-3", "t0", 5), "per service"
    finally:
        await a.close()
        await b.close()
