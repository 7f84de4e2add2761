"""Prometheus Alertmanager: the bot's silencer (bot/alerting/ports.py).

- plugin.py: what the bot wires: Alertmanager is used when OPSLOOP_ALERTMANAGER_URL is set.
- client.py: `AlertmanagerClient`, the port over Alertmanager's HTTP API v2, with retries.
- errors.py: where its failures become `IntegrationError("Alertmanager", ...)`.
- shapes.py: its JSON read into the bot's types, and the marker a silence carries.
"""
