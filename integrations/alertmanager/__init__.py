"""Prometheus Alertmanager (client.py)."""
