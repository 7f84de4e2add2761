"""Short-lived handles Slack gives an app with each interaction: trigger_ids and response_urls."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Trigger:
    """A trigger_id: lets the app open one modal for `user` within a few seconds."""

    user: str
    issued_at: float
    exchanged: bool = False


@dataclass
class ResponseTarget:
    """Where a response_url posts: the channel and user of the interaction, and its message."""

    channel: str
    user: str
    issued_at: float
    message_ts: str | None = None
    ephemeral_ts: str | None = None
    thread_ts: str | None = None
    uses: int = 0


class TokenIssuer:
    """Mints and checks trigger_ids and response_url tokens with Slack's lifetimes."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        trigger_ttl: float,
        response_url_ttl: float,
        response_url_uses: int,
    ) -> None:
        self._clock = clock
        self.trigger_ttl = trigger_ttl
        self.response_url_ttl = response_url_ttl
        self.response_url_uses = response_url_uses
        self.triggers: dict[str, Trigger] = {}
        self.response_targets: dict[str, ResponseTarget] = {}

    def issue_trigger(self, user: str) -> str:
        """A new trigger_id shaped like Slack's (`13345224609.738474920.8088930838d88f008e0`)."""
        trigger_id = (
            f"{secrets.randbelow(9 * 10**10) + 10**10}."
            f"{secrets.randbelow(9 * 10**8) + 10**8}."
            f"{secrets.token_hex(11)[:21]}"
        )
        self.triggers[trigger_id] = Trigger(user=user, issued_at=self._clock())
        return trigger_id

    def exchange_trigger(self, trigger_id: object) -> tuple[Trigger | None, str | None]:
        """Uses up a trigger_id: (trigger, None), or (None, Slack's error string)."""
        if not isinstance(trigger_id, str) or trigger_id not in self.triggers:
            return None, "invalid_trigger_id"
        trigger = self.triggers[trigger_id]
        if trigger.exchanged:
            return None, "exchanged_trigger_id"
        if self._clock() - trigger.issued_at >= self.trigger_ttl:
            return None, "expired_trigger_id"
        trigger.exchanged = True
        return trigger, None

    def issue_response_target(self, target: ResponseTarget) -> str:
        """Registers where a response_url posts and returns its token."""
        token = secrets.token_urlsafe(18)
        self.response_targets[token] = target
        return token

    def use_response_target(self, token: str) -> tuple[ResponseTarget | None, str | None]:
        """Checks a response_url token before a post: (target, None) or (None, Slack's error)."""
        target = self.response_targets.get(token)
        if target is None:
            return None, "no_service"
        if self._clock() - target.issued_at >= self.response_url_ttl:
            return None, "expired_url"
        if target.uses >= self.response_url_uses:
            return None, "used_url"
        return target, None
