"""What alerting needs from the system that holds the alerts: a silencer.

Acknowledging an alert group silences its alerts there for a while; unacknowledging ends the
silence; while a group is acknowledged, the bot asks which of its alerts still fire. The bot's
own types below are what a silencer returns. Implementation: integrations/alertmanager.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


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


__all__ = ["ActiveAlert", "Matcher", "Silence", "Silencer"]
