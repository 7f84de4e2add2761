"""Prometheus Alertmanager: the bot's silencer (bot/alerting/ports.py).

- client.py: `AlertmanagerClient`, the port over Alertmanager's HTTP API v2, with retries.
- errors.py: where its failures become `IntegrationError("Alertmanager", ...)`.
- shapes.py: its JSON read into the bot's types, and the marker a silence carries.
"""

from integrations.alertmanager.client import CALL_BUDGET, AlertmanagerClient
from integrations.alertmanager.errors import SYSTEM
from integrations.alertmanager.shapes import parse_time, silence_marker

__all__ = [
    "CALL_BUDGET",
    "SYSTEM",
    "AlertmanagerClient",
    "parse_time",
    "silence_marker",
]
