"""The one place Jira's failures become the bot's: an `IntegrationError("Jira", ...)` that says
what to fix (the credentials, a missing permission, a required field by its name) and never
carries the token, or `OutcomeUnknown` when a create may have happened without an answer."""

from __future__ import annotations

from typing import Any

from bot.errors import IntegrationError, OutcomeUnknown

SYSTEM = "Jira"
UNAVAILABLE = "Jira is unavailable, try again"
UNANSWERED = "Jira did not answer in time"
CREDENTIALS_REJECTED = (
    "Jira rejected opsloop's credentials (401); check OPSLOOP_JIRA_EMAIL and OPSLOOP_JIRA_TOKEN "
    "(Cloud: the account's e-mail and an API token; Data Center: a personal access token alone)"
)
_MAX_REASON = 300  # characters of Jira's own explanation passed on to a person


def failure(message: str, *, retryable: bool = False) -> IntegrationError:
    return IntegrationError(SYSTEM, message, retryable=retryable)


def unavailable() -> IntegrationError:
    return failure(UNAVAILABLE, retryable=True)


def outcome_unknown() -> OutcomeUnknown:
    return OutcomeUnknown(SYSTEM, UNANSWERED)


def reasons(body: Any) -> tuple[list[str], dict[str, str]]:
    """Jira's `errorMessages` and `errors` (by field id), whatever else the body holds."""
    if not isinstance(body, dict):
        return [], {}
    messages = [str(m) for m in body.get("errorMessages") or [] if m]
    by_field = body.get("errors") or {}
    fields = {str(k): str(v) for k, v in by_field.items()} if isinstance(by_field, dict) else {}
    return messages, fields


def said(body: Any) -> str:
    """Jira's explanation in one line, cut short."""
    messages, fields = reasons(body)
    words = "; ".join([*messages, *(f"{k}: {v}" for k, v in fields.items())])
    return words[:_MAX_REASON]


def refused(status: int, body: Any, what: str) -> IntegrationError:
    """A 4xx answer to `what` ("filing an issue in WEB"), in words saying what to fix."""
    reason = said(body)
    if status == 401:
        return failure(CREDENTIALS_REJECTED)
    if status == 403:
        return failure(
            f"opsloop's Jira account may not do this ({what}): {reason or 'permission denied'}. "
            "Give it Browse projects, Create issues, Assign issues and Transition issues in the "
            "project's permission scheme."
        )
    if status == 404:
        return failure(f"{what}: not found, or opsloop's Jira account may not see it")
    if status == 429:
        return failure(
            "Jira is limiting opsloop's requests (429); try again shortly", retryable=True
        )
    return failure(f"Jira refused {what} ({status}): {reason or 'no reason given'}")
