"""The one place GitLab's failures become the bot's: an `IntegrationError("GitLab", ...)` whose
message can be shown to a Slack user as it is (never carrying the token), or `OutcomeUnknown`
when a create may still be under way in GitLab.

It also tells failures apart for client.py: which are worth another attempt (429, 5xx,
time-outs, connection failures), and which may have reached GitLab without an answer (a read
time-out, a connection dropped after sending, a proxy's 502 or 504), so a create is looked for
instead of being sent again.
"""

from __future__ import annotations

from dataclasses import dataclass

import gitlab.exceptions

from bot.errors import IntegrationError, OutcomeUnknown

SYSTEM = "GitLab"

UNAVAILABLE = "GitLab is unavailable, try again"
UNANSWERED = "GitLab did not answer in time"
TOKEN_REJECTED = "GitLab rejected opsloop's token (401); check OPSLOOP_GITLAB_TOKEN"
_MAX_REASON = 300  # characters of GitLab's own explanation passed on to a person


class Unreadable(ValueError):
    """GitLab's answer did not have the shape its API describes."""


class OutOfTime(Exception):
    """Too little of the call's budget is left to start another attempt."""


class Problem(Exception):
    """A failure whose message is ready to be shown as it is."""


class NoSuchUser(Exception):
    """A username GitLab does not know, named by a person as an assignee."""

    def __init__(self, username: str) -> None:
        super().__init__(username)
        self.username = username


@dataclass(frozen=True)
class Target:
    """What a call was about, so its errors can name it."""

    project: str | None = None
    iid: int | None = None
    missing: str | None = None  # the 404 message when neither project nor issue says it
    thing: str | None = None  # the record asked for, for a 404: "pipeline #12 of acme/web"
    refused: str = "GitLab refused it"  # how a 4xx with GitLab's reason begins


def unavailable() -> IntegrationError:
    return IntegrationError(SYSTEM, UNAVAILABLE, retryable=True)


def outcome_unknown() -> OutcomeUnknown:
    return OutcomeUnknown(SYSTEM, UNANSWERED)


def failure(message: str) -> IntegrationError:
    """A request opsloop will not send, for a reason a person can act on."""
    return IntegrationError(SYSTEM, message)


def as_integration_error(e: Exception, target: Target, where: str) -> IntegrationError:
    """The one IntegrationError a failure becomes; `where` is GitLab's host (and port)."""
    if isinstance(e, NoSuchUser):
        return IntegrationError(SYSTEM, f"GitLab has no user `{e.username}`")
    if isinstance(e, Problem):
        return IntegrationError(SYSTEM, str(e))
    if isinstance(e, Unreadable | gitlab.exceptions.GitlabParsingError):
        return IntegrationError(SYSTEM, "GitLab sent an answer opsloop could not read")
    if isinstance(e, gitlab.exceptions.RedirectError):
        message = f"GitLab at {where} redirected the request; check OPSLOOP_GITLAB_URL"
        return IntegrationError(SYSTEM, message)
    if isinstance(e, gitlab.exceptions.GitlabError) and e.response_code is not None:
        return _http_error(e.response_code, reason(e.error_message), target)
    if is_tls(e):
        return IntegrationError(SYSTEM, f"no trusted TLS connection to GitLab at {where}")
    if isinstance(e, OSError | OutOfTime):  # requests' errors are OSErrors
        return unavailable()
    raise e


def status_of(e: BaseException) -> int | None:
    return e.response_code if isinstance(e, gitlab.exceptions.GitlabError) else None


def transient(e: BaseException) -> bool:
    """429, 5xx, time-outs and connection failures: worth another attempt."""
    status = status_of(e)
    if status is not None:
        return status == 429 or status >= 500
    return isinstance(e, OSError) and not is_tls(e)


def unanswered(e: BaseException) -> bool:
    """Whether a request may have reached GitLab, which may still be working on it: no answer
    (a read time-out, a connection dropped after sending) or a proxy's 502/504."""
    status = status_of(e)
    if status is not None:
        return status in (502, 504)
    names = {cls.__name__ for cls in type(e).__mro__}
    if "ConnectTimeout" in names or is_tls(e):
        return False  # never connected: nothing was sent
    if "Timeout" in names or "ChunkedEncodingError" in names:
        return True
    if "ConnectionError" in names and e.args:
        # requests wraps urllib3's reason: a refused or failed connection sent nothing.
        cause = type(getattr(e.args[0], "reason", e.args[0])).__name__
        return cause not in ("NewConnectionError", "ConnectTimeoutError", "NameResolutionError")
    return False


def is_tls(e: BaseException) -> bool:
    # requests.exceptions.SSLError, without importing requests (it ships no type hints).
    return any(cls.__name__ == "SSLError" for cls in type(e).__mro__)


def ref_missing(e: gitlab.exceptions.GitlabError) -> bool:
    """GitLab's `404 Branch Not Found` or `404 Tag Not Found` (not a missing project)."""
    why = reason(e.error_message).lower()
    return e.response_code == 404 and ("branch not found" in why or "tag not found" in why)


def variables_refused(e: gitlab.exceptions.GitlabError) -> bool:
    """GitLab's refusal of any pipeline variable (`restrict_user_defined_variables`)."""
    why = reason(e.error_message).lower()
    return (
        e.response_code in (400, 403)
        and "insufficient permissions to set pipeline variables" in why
    )


def reason(message: object) -> str:
    """GitLab's explanation in one line: `{"title": ["can't be blank"]}` -> title can't be blank."""
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    if isinstance(message, dict):
        parts = []
        for key, value in message.items():
            for problem in value if isinstance(value, list) else [value]:
                parts.append(str(problem) if key == "base" else f"{key} {problem}")
        text = "; ".join(parts)
    elif isinstance(message, list):
        text = "; ".join(str(m) for m in message)
    else:
        text = str(message)
    if text.lstrip().startswith("<"):
        return ""  # an HTML page from a proxy says nothing a person can use
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def _http_error(status: int, why: str, target: Target) -> IntegrationError:
    if status == 401:
        return IntegrationError(SYSTEM, TOKEN_REJECTED)
    if status == 403:
        where = f" project `{target.project}`" if target.project else ""
        return IntegrationError(SYSTEM, f"opsloop is not allowed to do that in GitLab{where} (403)")
    if status == 404:
        return IntegrationError(SYSTEM, _not_found(why, target))
    if status == 429 or status >= 500:
        return unavailable()
    if 400 <= status < 500:
        return IntegrationError(SYSTEM, f"{target.refused}: {why or f'answer {status}'}")
    return IntegrationError(SYSTEM, f"GitLab answered {status}")


def _not_found(why: str, target: Target) -> str:
    # GitLab says "404 Project Not Found" for the project and "404 Not found" for the record.
    project_missing = "project" in why.lower()
    if target.iid is not None and target.project and not project_missing:
        return f"issue {target.project}#{target.iid} was not found"
    if target.thing is not None and target.project and not project_missing:
        return f"{target.thing} was not found"
    if target.project:
        return f"GitLab project `{target.project}` was not found"
    return target.missing or "GitLab could not find it (404)"
