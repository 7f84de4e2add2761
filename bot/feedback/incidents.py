"""Which services an alert group is an incident of: the rule the deploy gate uses
(bot/deploys/service.py `blocking_alerts`): an alert of the group carries all of the service's
`alert_labels`. A service without `alert_labels` has no incidents."""

from __future__ import annotations

from collections.abc import Mapping

from bot.alerting.groups import AlertGroup
from bot.alerting.routing import labels_match
from bot.config_types import Service
from bot.feedback.history import Incident


def incidents_of(group: AlertGroup, services: Mapping[str, Service]) -> list[Incident]:
    """The group as an incident of each service it concerns (none: an empty list)."""
    found = []
    for name, service in sorted(services.items()):
        wanted = service.alert_labels
        if wanted and any(labels_match(a.labels, wanted) for a in group.alerts.values()):
            resolved = None if group.is_open else group.resolved_at
            found.append(
                Incident(
                    ref=group.ref,
                    service=name,
                    fired_at=group.started_at,
                    resolved_at=resolved,
                    title=group.title[:120],
                )
            )
    return found
