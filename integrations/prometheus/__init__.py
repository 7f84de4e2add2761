"""Prometheus: the numbers behind a canary's evidence (the Measures port of
bot/deploys/ports.py).

- plugin.py: what the bot wires: Prometheus is used when OPSLOOP_PROMETHEUS_URL is set.
- client.py: `PrometheusClient`, instant queries over its HTTP API (`/api/v1/query`), each
  answered or failed within a few seconds; its failures become `IntegrationError("Prometheus",
  ...)`.
"""
