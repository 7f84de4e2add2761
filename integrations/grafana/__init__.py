"""Grafana: its webhook contact point as an alert source, its Alertmanager as the silencer of
the groups it sent, and annotations for deploy steps."""
