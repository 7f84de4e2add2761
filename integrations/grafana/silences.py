"""Grafana's built-in Alertmanager as the silencer of the groups Grafana sent.

Grafana serves Alertmanager's API v2 under /api/alertmanager/grafana/api/v2/ (its
pkg/services/ngalert/api), behind a service-account token: the Alertmanager client serves it,
with Grafana's name in every error. Grafana answers a new silence with 202 {"silenceID"}, a
deleted one with 200, an unknown one with 404: all read as Alertmanager's answers are.
"""

from __future__ import annotations

from integrations.alertmanager.client import AlertmanagerClient

SYSTEM = "Grafana"
ALERTMANAGER_PATH = "/api/alertmanager/grafana"


def grafana_silencer(url: str, token: str, *, timeout: float = 5.0) -> AlertmanagerClient:
    """The silencer (bot/alerting/ports.py) over Grafana's Alertmanager at Grafana `url`."""
    return AlertmanagerClient(
        url.rstrip("/") + ALERTMANAGER_PATH,
        timeout=timeout,
        system=SYSTEM,
        headers={"Authorization": f"Bearer {token}"},
    )
