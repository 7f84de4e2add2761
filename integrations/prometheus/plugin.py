"""Prometheus as the wiring sees it: used when OPSLOOP_PROMETHEUS_URL is set, as what measures
a canary's evidence (services' `analysis`)."""

from __future__ import annotations

from bot.config_file import OpsConfig
from bot.plugins import Plugin, Provided
from bot.settings import Settings


def _configured(settings: Settings, config: OpsConfig) -> bool:
    return bool(settings.prometheus_url)


def _start(settings: Settings, config: OpsConfig) -> Provided:
    from integrations.prometheus.client import PrometheusClient

    client = PrometheusClient(settings.prometheus_url or "")
    return Provided(
        status="Prometheus configured", check=client.ready, measures=client, close=client.close
    )


PLUGIN = Plugin(
    name="prometheus",
    configured=_configured,
    start=_start,
    status_when_off="Prometheus not configured (approvals carry no evidence)",
)
