"""Which channel an alert group goes to: `alerts.routes`, first match wins."""

from __future__ import annotations

from bot.config_file import AlertRoute, Alerts


def route_for(alerts: Alerts, labels: dict[str, str]) -> AlertRoute | None:
    """The first route whose `match` labels all equal the group's; routes without `match`
    match everything, so the last of them is the default. None when nothing matches."""
    for route in alerts.routes:
        if all(labels.get(name) == value for name, value in route.match.items()):
            return route
    return None
