"""Alertmanager as the wiring sees it: used when OPSLOOP_ALERTMANAGER_URL is set, as the
silencer an acknowledgement makes its silence in."""

from __future__ import annotations

from bot.config_file import OpsConfig
from bot.plugins import Plugin, Provided, answers
from bot.settings import Settings


def _configured(settings: Settings, config: OpsConfig) -> bool:
    return bool(settings.alertmanager_url)


def _start(settings: Settings, config: OpsConfig) -> Provided:
    from integrations.alertmanager.client import AlertmanagerClient

    url = settings.alertmanager_url or ""
    client = AlertmanagerClient(url)

    async def check() -> str:
        return await answers(url.rstrip("/") + "/api/v2/status")

    return Provided(
        status="Alertmanager configured", check=check, silencer=client, close=client.close
    )


PLUGIN = Plugin(
    name="alertmanager",
    configured=_configured,
    start=_start,
    status_when_off="Alertmanager not configured",
    not_configured={
        "silencer": (
            "Alertmanager is not configured (OPSLOOP_ALERTMANAGER_URL is unset), so opsloop "
            "cannot silence alerts."
        ),
    },
)
