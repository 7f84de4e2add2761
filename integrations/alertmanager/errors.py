"""Where Alertmanager's failures become the bot's: one `IntegrationError("Alertmanager", ...)`
whose message can be shown to a Slack user as it is.

A failure worth another attempt (no connection, no answer in time, a 5xx) is first a `Failed`,
which the client's retry loop either tries again or raises as its `error`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from bot.errors import IntegrationError
from integrations.alertmanager.shapes import Unreadable

SYSTEM = "Alertmanager"

_MAX_REASON = 300  # characters of Alertmanager's own explanation passed on to a person

T = TypeVar("T")


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, read whole."""

    status: int
    text: str

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError as e:
            raise Unreadable("not JSON") from e

    def reason(self) -> str:
        """Alertmanager's own explanation: a JSON string (400), `{"message"}` (422) or text."""
        try:
            data = json.loads(self.text)
        except ValueError:
            data = self.text
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            data = data["message"]
        if not isinstance(data, str) or data.lstrip().startswith("<"):
            return ""  # an HTML error page from a proxy says nothing a person can use
        data = " ".join(data.split())
        return data if len(data) <= _MAX_REASON else data[: _MAX_REASON - 1] + "…"


class Failed(Exception):
    """One attempt failed in a way worth retrying."""

    def __init__(
        self, error: IntegrationError, cause: BaseException | None, maybe_sent: bool
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.cause = cause
        # False when the request certainly never reached Alertmanager (connect failed), so
        # repeating a POST cannot make a second silence.
        self.maybe_sent = maybe_sent


def failed(
    message: str, cause: BaseException | None, maybe_sent: bool, system: str = SYSTEM
) -> Failed:
    return Failed(IntegrationError(system, message, retryable=True), cause, maybe_sent)


def transport_failure(
    error: aiohttp.ClientError | TimeoutError, where: str, timeout: float, system: str = SYSTEM
) -> IntegrationError | Failed:
    """What an exchange that got no answer means: a final error (TLS) or one worth retrying.
    `system`: who serves the API (Grafana's built-in Alertmanager speaks it too)."""
    if isinstance(error, aiohttp.ClientSSLError):
        return IntegrationError(system, f"no trusted TLS connection to {system} at {where}")
    # ConnectionTimeoutError is a TimeoutError too: checked first, it never reached Alertmanager.
    if isinstance(error, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        return failed(f"{system} at {where} is unreachable", error, False, system)
    if isinstance(error, TimeoutError):
        return failed(f"{system} did not answer within {timeout:g} s", error, True, system)
    return failed(f"the connection to {system} at {where} failed", error, True, system)


def raise_for_4xx(reply: Reply, what: str, system: str = SYSTEM) -> None:
    """Alertmanager refused the request: say why, in its words where it gave any."""
    if reply.status in (400, 422):
        reason = reply.reason() or f"answer {reply.status}"
        raise IntegrationError(system, f"{system} refused the {what}: {reason}")
    if reply.status in (401, 403) and system != SYSTEM:
        # A token in front of the API (Grafana's): say which and what to fix.
        reason = reply.reason() or f"answer {reply.status}"
        raise IntegrationError(
            system, f"{system} refused the {what} ({reply.status}: {reason}); check its token"
        )
    if reply.status >= 300:
        raise IntegrationError(system, f"{system} answered {reply.status}")


def read(reply: Reply, parse: Callable[[Any], T], system: str = SYSTEM) -> T:
    """The answer in the bot's types; an answer of another shape is one clear error."""
    try:
        return parse(reply.json())
    except Unreadable as e:
        message = f"{system} sent an answer the bot could not read"
        raise IntegrationError(system, message) from e
