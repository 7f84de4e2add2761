"""Which channel an alert group goes to: `alerts.routes`, first match wins."""

from __future__ import annotations

from bot.config_file import AlertRoute, Alerts


def labels_match(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    """Every wanted label is present with the same value (no wanted labels: always)."""
    return all(labels.get(name) == value for name, value in wanted.items())


def route_for(alerts: Alerts, labels: dict[str, str]) -> AlertRoute | None:
    """The first route whose `match` labels all equal the group's; routes without `match`
    match everything, so the last of them is the default. None when nothing matches."""
    for route in alerts.routes:
        if labels_match(labels, route.match):
            return route
    return None
