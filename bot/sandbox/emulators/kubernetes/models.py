"""What the emulator records and the rules a test sets (denials)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass
class RecordedRequest:
    """One request as it arrived: tests assert which patches a client sent, and how."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    # The body parsed as JSON (dict or list); the raw text if it was not JSON; None without one.
    body: Any
    # Whether the bearer token was the emulator's (never the token itself).
    token_ok: bool
    at: float
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Denial:
    """A refusal `emu.deny()` set: None in a field matches anything.

    `resource` is the plural (`deployments`) or with its subresource (`rollouts/status`), as
    an RBAC rule names it: `deployments` covers the object alone, not `deployments/scale`.
    """

    verb: str | None = None
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    group: str | None = None

    def matches(
        self, verb: str, group: str, resource: str, subresource: str, namespace: str, name: str
    ) -> bool:
        full = f"{resource}/{subresource}" if subresource else resource
        return (
            (self.verb is None or self.verb in (verb, "*"))
            and (self.resource is None or self.resource in (full, "*"))
            and (self.namespace is None or self.namespace == namespace)
            and (self.name is None or self.name == name)
            and (self.group is None or self.group == group)
        )
