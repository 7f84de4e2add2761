"""The bot's own error types: what went wrong, said in words a Slack user can act on."""

from __future__ import annotations

import logging
import secrets

log = logging.getLogger(__name__)


class OpsloopError(Exception):
    """Base of every error the bot raises on purpose."""


class UserError(OpsloopError):
    """Bad input from a person: shown to them as an ephemeral message, never logged as a fault."""

    def __init__(self, problem: str, hint: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.problem}\n{self.hint}" if self.hint else self.problem


class IntegrationError(OpsloopError):
    """A system behind a command (GitLab, Docker, Alertmanager, Slack, Redis) failed.

    `message` is safe to show to the person: it never carries a token or a stack trace.
    """

    def __init__(self, system: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(f"{system}: {message}")
        self.system = system
        self.message = message
        self.retryable = retryable


class OutcomeUnknown(IntegrationError):
    """A call that makes something (an issue, a pipeline) got no answer in time: the other
    system may still have made it. Never make it again blindly: look for it later (bot/once.py).

    `look_again_in`: seconds until the job looks again; `first`: whether the person has not
    been told yet; `what` and `check`: the family's words for the effect and where to see it.
    """

    def __init__(
        self,
        system: str,
        message: str,
        *,
        look_again_in: float | None = None,
        first: bool = True,
        what: str = "it was done",
        check: str = "",
    ) -> None:
        super().__init__(system, message, retryable=True)
        self.look_again_in = look_again_in
        self.first = first
        self.what = what
        self.check = check


class SettingsError(OpsloopError):
    """A setting is missing or wrong; the message names it as the user wrote it."""


def new_reference() -> str:
    """A short reference shown to a person for an unexpected failure, and logged beside it."""
    return "E-" + secrets.token_hex(4)


def log_unexpected(exc: BaseException, where: str) -> str:
    """Log an unexpected exception with a fresh reference and return that reference."""
    ref = new_reference()
    log.error("unexpected error in %s (reference %s)", where, ref, exc_info=exc)
    return ref
