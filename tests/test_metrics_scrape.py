"""GET /metrics: what the bot reads from Redis at each scrape, and how it answers without Redis.

Real Redis, the bot's HTTP app; the numbers are read from the scrape text as Prometheus would.
The dashboard and the alert rules in deploy/monitoring/ are built on these names.
"""

from __future__ import annotations

import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio
from prometheus_client.parser import text_string_to_metric_families

from bot.config_file import AlertRoute, Alerts, OpsConfig
from bot.deploys.rollout import Rollout
from integrations.docker.config import DockerService
from tests.alert_payloads import TOKEN, alert, notification
from tests.harness import BotUnderTest, running_bot
from tests.servers import own_redis
from tests.test_alerts_webhook import post_hook
from tests.test_deployer_contract import new_rollout
from tests.waiting import eventually

ARQ_IN_PROGRESS = "arq:in-progress:"  # arq's mark on a job a worker is running


async def scrape(bot: BotUnderTest) -> tuple[float, dict[str, float]]:
    """(seconds the scrape took, every sample as `name{labels}` -> value)."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as http, http.get(bot.base_url + "/metrics") as r:
        assert r.status == 200
        text = await r.text()
    took = time.monotonic() - started
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return took, samples


async def test_a_running_worker_is_counted_alive(redis_url: str) -> None:
    async with running_bot(redis_url) as bot:
        _, samples = await eventually(
            lambda: _with(bot, lambda s: s.get("opsloop_workers_alive", 0) >= 1),
            what="the worker's heartbeat in /metrics",
        )
        assert samples["opsloop_redis_up"] == 1
        assert samples["opsloop_alert_groups_open"] == 0
    async with running_bot(redis_url, worker=False) as bot:
        # The worker above said goodbye when it stopped: none is alive now.
        _, samples = await scrape(bot)
        assert samples["opsloop_workers_alive"] == 0


async def _with(bot: BotUnderTest, check: Any) -> tuple[float, dict[str, float]] | None:
    result = await scrape(bot)
    return result if check(result[1]) else None


async def test_the_queue_shows_waiting_running_and_scheduled_jobs_and_the_oldest_age(
    redis_url: str,
) -> None:
    async with running_bot(redis_url, worker=False) as bot:
        _, samples = await scrape(bot)
        assert samples["opsloop_jobs_waiting"] == 0
        assert samples["opsloop_jobs_oldest_age_seconds"] == 0
        queue = bot.deps.queue
        now = time.time()
        # No worker runs here: jobs stay where they are put.
        await queue.enqueue("ops.run", {}, job_id="due-a-minute-ago", run_at=now - 60)
        await queue.enqueue("ops.run", {}, job_id="due-now", run_at=now)
        await queue.enqueue("ops.run", {}, job_id="running", run_at=now - 600)
        await queue.enqueue("ops.run", {}, job_id="in-an-hour", run_at=now + 3600)
        client = redis.asyncio.Redis.from_url(redis_url)
        try:  # what arq writes when a worker takes a job
            await client.set(ARQ_IN_PROGRESS + "running", b"1", px=60_000)
        finally:
            await client.aclose()
        _, samples = await scrape(bot)
    assert samples["opsloop_jobs_queued"] == 4
    assert samples["opsloop_jobs_waiting"] == 2
    assert samples["opsloop_jobs_in_progress"] == 1
    assert samples["opsloop_jobs_scheduled"] == 1
    # The oldest job a worker has not taken, not the running one (600 s) nor the scheduled one.
    assert 59 <= samples["opsloop_jobs_oldest_age_seconds"] < 70


def _deploy_config() -> OpsConfig:
    service = {"deployer": "docker", "image": "local/app", "replicas": 2, "steps": [50, 100]}
    return OpsConfig(
        services={
            "web": DockerService.model_validate(service),
            "api": DockerService.model_validate(service),
            "idle": DockerService.model_validate(service),
        },
        alerts=Alerts(routes=[AlertRoute(channel="C0ALERTS")]),
    )


def _rollout(service: str, state: str) -> Rollout:
    return replace(new_rollout(service, "2", "1", [50, 100]), state=state)


async def test_deploys_in_flight_counts_unfinished_rollouts_by_state(redis_url: str) -> None:
    async with running_bot(redis_url, config=_deploy_config(), worker=False) as bot:
        _, samples = await scrape(bot)
        assert samples['opsloop_deploys_in_flight{state="awaiting"}'] == 0
        for service, state in (("web", "awaiting"), ("api", "complete")):
            rollout = _rollout(service, state)
            await bot.deps.store.deploys.change(service, lambda _, r=rollout: (r, None))
        _, samples = await scrape(bot)
    assert samples['opsloop_deploys_in_flight{state="awaiting"}'] == 1
    in_flight = {k: v for k, v in samples.items() if k.startswith("opsloop_deploys_in_flight")}
    assert sum(in_flight.values()) == 1, in_flight  # the complete one is not in flight


async def test_an_alert_group_is_counted_open_until_it_resolves(redis_url: str) -> None:
    config = OpsConfig(alerts=Alerts(routes=[AlertRoute(channel="C0ALERTS")]))
    async with running_bot(
        redis_url, config=config, OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN=TOKEN
    ) as bot:
        status, _ = await post_hook(bot, notification([alert("db1")]))
        assert status < 300
        await eventually(
            lambda: _with(bot, lambda s: s["opsloop_alert_groups_open"] == 1),
            what="one open alert group",
        )
        status, _ = await post_hook(bot, notification([alert("db1", resolved=True)]))
        assert status < 300
        await eventually(
            lambda: _with(bot, lambda s: s["opsloop_alert_groups_open"] == 0),
            what="no open alert group",
        )
        _, samples = await scrape(bot)
        # The webhook's outcomes, as the dashboard's panel sums them.
        hook = 'opsloop_http_requests_total{route="/hooks/alertmanager",status="2'
        assert sum(v for k, v in samples.items() if k.startswith(hook)) == 2


async def test_metrics_answer_quickly_with_redis_up_0_when_redis_is_stopped_or_hangs(
    tmp_path: Path,
) -> None:
    async with own_redis(tmp_path) as server, running_bot(server.url, worker=False) as bot:
        _, samples = await scrape(bot)
        assert samples["opsloop_redis_up"] == 1
        assert server.process is not None
        # A Redis that hangs: the connection stays open and nothing answers.
        server.process.send_signal(signal.SIGSTOP)
        took, samples = await scrape(bot)
        server.process.send_signal(signal.SIGCONT)
        assert took < 2.0, f"/metrics took {took:.1f} s with Redis paused"
        assert samples["opsloop_redis_up"] == 0
        # No stale numbers: the Redis-derived series are absent, so "no worker alive" does not
        # fire beside "Redis unreachable".
        assert "opsloop_workers_alive" not in samples
        assert "opsloop_jobs_oldest_age_seconds" not in samples
        # What this process counts itself is still served.
        assert any(k.startswith("opsloop_http_requests_total") for k in samples)

        await eventually(
            lambda: _with(bot, lambda s: s["opsloop_redis_up"] == 1), what="Redis answers again"
        )
        server.stop()
        took, samples = await scrape(bot)
        assert took < 2.0, f"/metrics took {took:.1f} s with Redis stopped"
        assert samples["opsloop_redis_up"] == 0
