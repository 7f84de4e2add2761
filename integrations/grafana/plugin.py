"""Grafana as the wiring sees it: `/hooks/grafana` always served (404 while
OPSLOOP_GRAFANA_WEBHOOK_SECRET is unset); with OPSLOOP_GRAFANA_URL and OPSLOOP_GRAFANA_TOKEN,
its Alertmanager silences the groups it sent, each deploy step becomes an annotation, and
`opsloop check` probes it."""

from __future__ import annotations

from bot.config_file import OpsConfig
from bot.plugins import Plugin, Provided, answers
from bot.settings import Settings
from integrations.grafana.webhook import SOURCE


def _configured(settings: Settings, config: OpsConfig) -> bool:
    return bool(settings.grafana_url and settings.secret("grafana_token"))


def _start(settings: Settings, config: OpsConfig) -> Provided:
    from integrations.grafana.annotations import GrafanaAnnotations
    from integrations.grafana.silences import grafana_silencer

    url = (settings.grafana_url or "").rstrip("/")
    token = settings.secret("grafana_token") or ""
    silencer = grafana_silencer(url, token)
    marks = GrafanaAnnotations(url, token)

    async def close() -> None:
        try:
            await silencer.close()
        finally:
            await marks.close()

    async def check() -> str:
        # /api/health answers without a token; /api/user proves the token.
        await answers(url + "/api/health")
        return await answers(url + "/api/user", {"Authorization": f"Bearer {token}"})

    return Provided(
        status="Grafana configured",
        check=check,
        silencer=silencer,
        annotator=marks,
        close=close,
    )


PLUGIN = Plugin(
    name="grafana",
    configured=_configured,
    start=_start,
    status_when_off="Grafana not configured",
    alert_sources=(SOURCE,),
    not_configured={
        "silencer": (
            "Grafana is not configured (OPSLOOP_GRAFANA_URL and OPSLOOP_GRAFANA_TOKEN are "
            "unset), so opsloop cannot silence Grafana's alerts."
        ),
    },
)
