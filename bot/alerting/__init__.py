"""Alertmanager notifications as Slack threads: payload, routing, group state, the webhook."""
