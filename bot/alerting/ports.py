"""What alerting needs from the system that holds the alerts: a silencer.

Acknowledging an alert group silences its alerts there for a while; unacknowledging ends the
silence; while a group is acknowledged, the bot asks which of its alerts still fire. The bot's
own types below are what a silencer returns. Implementation: integrations/alertmanager.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol


@dataclass(frozen=True)
class Matcher:
    """One label matcher: `n="v"`, `n!="v"`, `n=~"re"` or `n!~"re"`."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    def expression(self) -> str:
        """This matcher in the filter syntax, with the value quoted and escaped."""
        op = (
            ("=~" if self.is_equal else "!~") if self.is_regex else ("=" if self.is_equal else "!=")
        )
        value = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{op}"{value}"'


@dataclass(frozen=True)
class ActiveAlert:
    """One alert the silencer holds."""

    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    state: str  # "active" | "suppressed" | "unprocessed"
    silenced_by: tuple[str, ...]
    inhibited_by: tuple[str, ...]
    generator_url: str | None


@dataclass(frozen=True)
class Silence:
    """One silence as the silencer keeps it."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    state: str  # "active" | "pending" | "expired"


class Silencer(Protocol):
    """Silences and alert queries, for acknowledged alert groups."""

    async def create_silence(
        self,
        matchers: Sequence[Matcher],
        duration: timedelta,
        created_by: str,
        comment: str,
        *,
        key: str,
    ) -> str:
        """Silence alerts matching `matchers` from now for `duration`; return the silence id.

        `key` identifies the request: the silence carries it, so that a retry or a re-run of
        the same request finds the silence instead of making a second one."""
        ...

    async def find_silence(self, matchers: Sequence[Matcher], key: str) -> Silence | None:
        """The live (active or pending) silence made for request `key`, if any."""
        ...

    async def expire_silence(self, silence_id: str) -> None:
        """End a silence now; an expired or unknown silence is not an error."""
        ...

    async def get_silence(self, silence_id: str) -> Silence | None:
        """The silence with this id, or None when the silencer does not know it."""
        ...

    async def alerts(
        self,
        matchers: Sequence[Matcher] = (),
        *,
        active: bool = True,
        silenced: bool = True,
        inhibited: bool = True,
    ) -> list[ActiveAlert]:
        """Alerts the silencer holds that match every matcher, filtered by state."""
        ...

    async def status(self) -> str:
        """The silencer's version, proving that it answers."""
        ...

    async def close(self) -> None:
        """Release the connections."""
        ...


class SourceRefused(ValueError):
    """A source's body is not a notification; the message names the field (answered 400)."""


@dataclass(frozen=True)
class AlertSource:
    """A system other than Alertmanager that sends alert notifications to a webhook of its own.

    Its route answers as `/hooks/alertmanager` does (bot/alerting/webhook.py); what it sends is
    turned into an Alertmanager-shaped notification (bot/alerting/payload.py) whose `source` is
    `name`, so that the groups it opens are silenced in the silencer of the same name."""

    name: str  # e.g. "grafana": recorded on its groups
    route: str  # e.g. "/hooks/grafana"
    secret: str  # the Settings secret that authenticates its calls; unset: the route answers 404
    secret_env: str  # that setting's variable, named in the 404
    # (headers, body, secret, now) -> None when the call is authentic, else why not (the 401).
    authenticate: Callable[[Mapping[str, str], bytes, str, float], str | None]
    # The decoded body -> a notification (payload.py); SourceRefused naming the field.
    translate: Callable[[Any], dict[str, Any]]


__all__ = ["ActiveAlert", "AlertSource", "Matcher", "Silence", "Silencer", "SourceRefused"]
