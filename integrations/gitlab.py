"""GitLab: the port the bot uses for tasks (issues, users) and its python-gitlab adapter.

python-gitlab is synchronous, so every call runs in a worker thread (`asyncio.to_thread`) with
its own `gitlab.Gitlab` (a requests.Session is not safe to share between threads). The adapter
returns the bot's own frozen types and turns every failure into one
`IntegrationError("GitLab", ...)` whose message can be shown to a Slack user as it is.

Time: the contract gives a person an answer within 30 s, so one port call, retries included,
ends within CALL_BUDGET. python-gitlab repeats a request after 5xx, time-outs and connection
errors (`retry_transient_errors`), pausing 0.1 s, 0.2 s, ... between attempts; the adapter hands
it `max_retries` and a per-attempt timeout of
    min(timeout, (time left - those pauses) / (max_retries + 1)),
so with the defaults (10 s, 2 retries, 24 s) each attempt gets at most 7.9 s. One thing
python-gitlab would do unbounded is taken from it: it sleeps for whatever `Retry-After` says
(on 429, and on 5xx when the header is there) before retrying, so the adapter hides that header
from it and retries 429 itself, only when the wait fits in the time left. requests applies the
timeout to connecting and to each read apart, so a server that trickles its answer could
outlast it: the awaiting coroutine gives up at CALL_LIMIT whatever the thread is doing (a thread
cannot be stopped; its late result is dropped).

Creating an issue is not idempotent, and python-gitlab would repeat a POST that may have reached
GitLab. The adapter repeats it itself, and before each repeat looks for the issue among those
the token's user created in the last minutes (same title and description), so an issue GitLab
filed before the answer was lost is returned, not filed again. A POST still running inside
GitLab when its attempt timed out cannot be seen yet; that one can still end up twice.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from itertools import islice
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import gitlab
import gitlab.exceptions

from bot.errors import IntegrationError

SYSTEM = "GitLab"

CALL_BUDGET = 24.0  # seconds every attempt of one port call may take together
CALL_LIMIT = 25.0  # the awaiting coroutine's own limit, in case a thread overruns the budget
_MIN_ATTEMPT = 0.5  # an attempt with less time than this is not started
_GITLAB_BACKOFF = 0.1  # python-gitlab's pause before its first retry, doubled for each further
_RATE_LIMIT_BACKOFF = 1.0  # pause after a 429 without Retry-After, doubled for each further
_RECENT = timedelta(minutes=10)  # how far back a retried create looks for its own issue
_MAX_REASON = 300  # characters of GitLab's own explanation passed on to a person
_STATES = ("opened", "closed", "all")

UNAVAILABLE = "GitLab is unavailable, try again"
TOKEN_REJECTED = "GitLab rejected opsloop's token (401); check OPSLOOP_GITLAB_TOKEN"

T = TypeVar("T")


@dataclass(frozen=True)
class Issue:
    """A GitLab issue as the bot shows it."""

    project: str  # path with namespace: "acme/web"
    iid: int
    title: str
    description: str
    state: str  # "opened" | "closed"
    labels: tuple[str, ...]
    assignees: tuple[str, ...]  # usernames
    author: str  # username
    web_url: str
    reference: str  # "acme/web#12"


@dataclass(frozen=True)
class GitLabUser:
    """A GitLab account."""

    id: int
    username: str
    name: str


class TasksPort(Protocol):
    """What the bot needs from GitLab for tasks."""

    async def create_issue(
        self,
        project: str,
        title: str,
        *,
        description: str = "",
        labels: Sequence[str] = (),
        assignee: str | None = None,
    ) -> Issue:
        """File an issue in `project` (a path), assigned to a GitLab username if given."""
        ...

    async def list_issues(
        self, project: str, *, state: str = "opened", assignee: str | None = None, limit: int = 20
    ) -> list[Issue]:
        """Newest first; `state` is "opened", "closed" or "all"; `assignee` a username."""
        ...

    async def get_issue(self, project: str, iid: int) -> Issue:
        """One issue by its number in the project."""
        ...

    async def close_issue(self, project: str, iid: int) -> Issue:
        """Close an issue; closing a closed issue is not an error."""
        ...

    async def assign_issue(self, project: str, iid: int, username: str) -> Issue:
        """Make `username` the issue's only assignee."""
        ...

    async def user_by_email(self, email: str) -> GitLabUser | None:
        """The account with this e-mail address, or None when none (or several) match."""
        ...

    async def user_by_username(self, username: str) -> GitLabUser | None:
        """The account with this username, or None."""
        ...

    async def version(self) -> str:
        """GitLab's version, proving that it answers and accepts the token."""
        ...


class _Unreadable(ValueError):
    """GitLab's answer did not have the shape its API describes."""


class _OutOfTime(Exception):
    """Too little of the call's budget is left to start another attempt."""


class _NoSuchUser(Exception):
    def __init__(self, username: str) -> None:
        super().__init__(username)
        self.username = username


@dataclass(frozen=True)
class _Target:
    """What a call was about, so its errors can name it."""

    project: str | None = None
    iid: int | None = None
    missing: str | None = None  # the 404 message when neither project nor issue says it


class _Connection:
    """One python-gitlab client, used by one worker thread only."""

    def __init__(self, url: str, token: str) -> None:
        self.gl = gitlab.Gitlab(
            url,
            private_token=token,
            retry_transient_errors=True,
            user_agent=f"opsloop python-gitlab/{gitlab.__version__}",
        )
        self.retry_after: float | None = None
        self.gl.session.hooks["response"].append(self._on_response)

    def _on_response(self, response: Any, *args: Any, **kwargs: Any) -> None:
        # python-gitlab sleeps for any Retry-After (or until RateLimit-Reset) before its own
        # retries, however long: keep the value for the adapter and hide it from python-gitlab.
        value = response.headers.pop("Retry-After", None)
        response.headers.pop("RateLimit-Reset", None)
        self.retry_after = _retry_after(value) if response.status_code == 429 else None

    def close(self) -> None:
        self.gl.session.close()


class _Call:
    """One attempt's view of the call's budget: the options for each python-gitlab request."""

    def __init__(self, connection: _Connection, deadline: float, timeout: float, retries: int):
        self.gl = connection.gl
        self._deadline = deadline
        self._timeout = timeout
        self._retries = retries

    def opts(self, *, repeat: bool = True) -> dict[str, Any]:
        """`timeout` and retry options for one request, fitted into the time left."""
        retries = self._retries if repeat else 0
        pauses = sum(_GITLAB_BACKOFF * 2.0**n for n in range(retries))
        left = self._deadline - time.monotonic() - pauses
        per_attempt = min(self._timeout, left / (retries + 1))
        if per_attempt < min(_MIN_ATTEMPT, self._timeout):
            raise _OutOfTime
        return {
            "timeout": per_attempt,
            "max_retries": retries,
            "retry_transient_errors": repeat,
            "obey_rate_limit": False,  # 429 is retried by the adapter, within the budget
        }


class GitLabClient:
    """`TasksPort` over GitLab's REST API v4, through python-gitlab."""

    def __init__(self, url: str, token: str, *, timeout: float = 10.0, max_retries: int = 2):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL")
        if timeout <= 0 or max_retries < 0:
            raise ValueError("timeout must be positive and max_retries not negative")
        self._url = url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._max_retries = max_retries
        self._where = parts.hostname + (f":{parts.port}" if parts.port else "")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[_Connection] = []

    def __repr__(self) -> str:
        return f"GitLabClient({self._where!r})"

    # -- the port -------------------------------------------------------------------------

    async def create_issue(
        self,
        project: str,
        title: str,
        *,
        description: str = "",
        labels: Sequence[str] = (),
        assignee: str | None = None,
    ) -> Issue:
        """File an issue (`POST /projects/:id/issues`); a retry never files it twice."""
        started = datetime.now(UTC)
        data: dict[str, Any] = {"title": title, "description": description}
        if labels:
            data["labels"] = ",".join(labels)

        def create(c: _Call) -> Issue:
            if assignee is not None:
                user = _user_named(c, assignee)
                if user is None:
                    raise _NoSuchUser(assignee)
                data["assignee_ids"] = [user.id]
            issues = c.gl.projects.get(project, lazy=True).issues
            made = issues.create(data, **c.opts(repeat=False))
            return _issue(made.attributes, project)

        def made_already(c: _Call) -> Issue | None:
            issues = c.gl.projects.get(project, lazy=True).issues
            recent = issues.list(
                scope="created_by_me",
                created_after=(started - _RECENT).isoformat(),
                order_by="created_at",
                sort="desc",
                per_page=100,
                get_all=False,
                **c.opts(),
            )
            for candidate in recent:
                found = _issue(candidate.attributes, project)
                if found.title == title and found.description == description:
                    return found
            return None

        return await self._call(create, _Target(project), recover=made_already)

    async def list_issues(
        self, project: str, *, state: str = "opened", assignee: str | None = None, limit: int = 20
    ) -> list[Issue]:
        """Newest first (`GET /projects/:id/issues`), at most `limit`."""
        if state not in _STATES:
            raise ValueError(f"state must be one of {', '.join(_STATES)}")
        if limit < 1:
            return []
        filters: dict[str, Any] = {"state": state, "order_by": "created_at", "sort": "desc"}
        if assignee is not None:
            filters["assignee_username"] = assignee

        def list_(c: _Call) -> list[Issue]:
            issues = c.gl.projects.get(project, lazy=True).issues
            pages = issues.list(iterator=True, per_page=min(limit, 100), **filters, **c.opts())
            return [_issue(i.attributes, project) for i in islice(pages, limit)]

        return await self._call(list_, _Target(project))

    async def get_issue(self, project: str, iid: int) -> Issue:
        """One issue (`GET /projects/:id/issues/:iid`)."""

        def get(c: _Call) -> Issue:
            issue = c.gl.projects.get(project, lazy=True).issues.get(iid, **c.opts())
            return _issue(issue.attributes, project)

        return await self._call(get, _Target(project, iid))

    async def close_issue(self, project: str, iid: int) -> Issue:
        """Close an issue (`PUT .../issues/:iid` with `state_event=close`)."""
        return await self._edit(project, iid, lambda c: {"state_event": "close"})

    async def assign_issue(self, project: str, iid: int, username: str) -> Issue:
        """Make `username` the only assignee (`PUT .../issues/:iid` with `assignee_ids`)."""

        def change(c: _Call) -> dict[str, Any]:
            user = _user_named(c, username)
            if user is None:
                raise _NoSuchUser(username)
            return {"assignee_ids": [user.id]}

        return await self._edit(project, iid, change)

    async def user_by_email(self, email: str) -> GitLabUser | None:
        """The account GitLab's user search finds for this address (`GET /users?search=`)."""
        wanted = email.strip().lower()

        def search(c: _Call) -> GitLabUser | None:
            found = [
                u.attributes for u in c.gl.users.list(search=wanted, get_all=False, **c.opts())
            ]
            # An admin token sees `email`, anyone sees `public_email`; without either, GitLab
            # matched the address exactly (a search term never matches part of one).
            exact = [
                u
                for u in found
                if wanted in {str(u.get(k) or "").lower() for k in ("email", "public_email")}
            ]
            chosen = exact or found
            return _user(chosen[0]) if len(chosen) == 1 else None

        return await self._call(search, _Target())

    async def user_by_username(self, username: str) -> GitLabUser | None:
        """The account with this username (`GET /users?username=`), or None."""
        return await self._call(lambda c: _user_named(c, username), _Target())

    async def version(self) -> str:
        """GitLab's version (`GET /version`, which needs a valid token)."""

        def version(c: _Call) -> str:
            data = c.gl.http_get("/version", **c.opts())
            if not isinstance(data, dict) or not isinstance(data.get("version"), str):
                raise _Unreadable("no version")
            return str(data["version"])

        missing = f"there is no GitLab API at {self._where}; check OPSLOOP_GITLAB_URL"
        return await self._call(version, _Target(missing=missing))

    async def close(self) -> None:
        """Release the connections of every worker thread."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    # -- plumbing -------------------------------------------------------------------------

    async def _edit(
        self, project: str, iid: int, change: Callable[[_Call], dict[str, Any]]
    ) -> Issue:
        def edit(c: _Call) -> Issue:
            issues = c.gl.projects.get(project, lazy=True).issues
            return _issue(issues.update(iid, change(c), **c.opts()), project)

        return await self._call(edit, _Target(project, iid))

    async def _call(
        self,
        work: Callable[[_Call], T],
        target: _Target,
        *,
        recover: Callable[[_Call], T | None] | None = None,
    ) -> T:
        deadline = time.monotonic() + CALL_BUDGET
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self._attempts, work, target, deadline, recover),
                timeout=CALL_LIMIT,
            )
        except TimeoutError as e:
            raise IntegrationError(SYSTEM, UNAVAILABLE, retryable=True) from e

    def _connection(self) -> _Connection:
        connection: _Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = _Connection(self._url, self._token)
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _attempts(
        self,
        work: Callable[[_Call], T],
        target: _Target,
        deadline: float,
        recover: Callable[[_Call], T | None] | None,
    ) -> T:
        """Runs `work` in this worker thread, repeating it after 429 (and, for a non-idempotent
        call with `recover`, after transient failures), and maps the final failure."""
        connection = self._connection()
        # Non-idempotent work is repeated here, not by python-gitlab, so `recover` runs first.
        retries = self._max_retries if recover is None else 0
        attempt = 0
        while True:
            call = _Call(connection, deadline, self._timeout, retries)
            try:
                return work(call)
            except Exception as e:
                pause = self._pause(e, connection, attempt, recover is not None)
                if pause is None or time.monotonic() + pause + _MIN_ATTEMPT > deadline:
                    found = _maybe_made(recover, call, e)
                    if found is not None:
                        return found
                    raise self._error(e, target) from e
                time.sleep(pause)
                found = _maybe_made(recover, call, e)
                if found is not None:
                    return found
                attempt += 1

    def _pause(
        self, e: Exception, connection: _Connection, attempt: int, repeats_transient: bool
    ) -> float | None:
        """Seconds to wait before repeating the work after `e`; None: do not repeat it."""
        if attempt >= self._max_retries:
            return None
        if _status(e) == 429:
            return connection.retry_after or _RATE_LIMIT_BACKOFF * 2.0**attempt
        if repeats_transient and _transient(e):
            return _GITLAB_BACKOFF * 2.0**attempt
        return None

    def _error(self, e: Exception, target: _Target) -> IntegrationError:
        """The one IntegrationError a failure becomes; never carrying the token."""
        if isinstance(e, _NoSuchUser):
            return IntegrationError(SYSTEM, f"GitLab has no user `{e.username}`")
        if isinstance(e, _Unreadable | gitlab.exceptions.GitlabParsingError):
            return IntegrationError(SYSTEM, "GitLab sent an answer opsloop could not read")
        if isinstance(e, gitlab.exceptions.RedirectError):
            message = f"GitLab at {self._where} redirected the request; check OPSLOOP_GITLAB_URL"
            return IntegrationError(SYSTEM, message)
        if isinstance(e, gitlab.exceptions.GitlabError) and e.response_code is not None:
            return _http_error(e.response_code, _reason(e.error_message), target)
        if _is_tls(e):
            message = f"no trusted TLS connection to GitLab at {self._where}"
            return IntegrationError(SYSTEM, message)
        if isinstance(e, OSError | _OutOfTime):  # requests' errors are OSErrors
            return IntegrationError(SYSTEM, UNAVAILABLE, retryable=True)
        raise e


def _maybe_made(recover: Callable[[_Call], T | None] | None, call: _Call, e: Exception) -> T | None:
    """What `recover` finds after a failure that may have reached GitLab; None otherwise."""
    if recover is None or not _transient(e) or _status(e) == 429:
        return None
    try:
        return recover(call)
    except Exception:
        return None  # the caller reports the original failure


def _status(e: BaseException) -> int | None:
    return e.response_code if isinstance(e, gitlab.exceptions.GitlabError) else None


def _transient(e: BaseException) -> bool:
    """429, 5xx, time-outs and connection failures: worth another attempt."""
    status = _status(e)
    if status is not None:
        return status == 429 or status >= 500
    return isinstance(e, OSError) and not _is_tls(e)


def _is_tls(e: BaseException) -> bool:
    # requests.exceptions.SSLError, without importing requests (it ships no type hints).
    return any(cls.__name__ == "SSLError" for cls in type(e).__mro__)


def _http_error(status: int, reason: str, target: _Target) -> IntegrationError:
    if status == 401:
        return IntegrationError(SYSTEM, TOKEN_REJECTED)
    if status == 403:
        where = f" project `{target.project}`" if target.project else ""
        return IntegrationError(SYSTEM, f"opsloop is not allowed to do that in GitLab{where} (403)")
    if status == 404:
        return IntegrationError(SYSTEM, _not_found(reason, target))
    if status == 429 or status >= 500:
        return IntegrationError(SYSTEM, UNAVAILABLE, retryable=True)
    if 400 <= status < 500:
        return IntegrationError(SYSTEM, f"GitLab refused it: {reason or f'answer {status}'}")
    return IntegrationError(SYSTEM, f"GitLab answered {status}")


def _not_found(reason: str, target: _Target) -> str:
    # GitLab says "404 Project Not Found" for the project and "404 Not found" for the record.
    project_missing = "project" in reason.lower()
    if target.iid is not None and target.project and not project_missing:
        return f"issue {target.project}#{target.iid} was not found"
    if target.project:
        return f"GitLab project `{target.project}` was not found"
    return target.missing or "GitLab could not find it (404)"


def _reason(message: object) -> str:
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


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _user_named(c: _Call, username: str) -> GitLabUser | None:
    wanted = username.lstrip("@")
    for user in c.gl.users.list(username=wanted, get_all=False, **c.opts()):
        data = user.attributes
        if str(data.get("username", "")).lower() == wanted.lower():
            return _user(data)
    return None


def _user(data: dict[str, Any]) -> GitLabUser:
    try:
        return GitLabUser(
            id=int(data["id"]), username=str(data["username"]), name=str(data["name"])
        )
    except (KeyError, TypeError, ValueError) as e:
        raise _Unreadable("not a user") from e


def _username(person: object) -> str | None:
    username = person.get("username") if isinstance(person, dict) else None
    return username if isinstance(username, str) else None


def _issue(data: dict[str, Any], project: str) -> Issue:
    try:
        iid = int(data["iid"])
        references = data.get("references") or {}
        reference = str(references.get("full") or f"{project}#{iid}")
        assignees = [_username(a) for a in data.get("assignees") or []]
        if not assignees and data.get("assignee"):
            assignees = [_username(data["assignee"])]
        labels = [lb["name"] if isinstance(lb, dict) else lb for lb in data.get("labels") or []]
        return Issue(
            project=reference.rpartition("#")[0] or project,
            iid=iid,
            title=str(data["title"]),
            description=str(data.get("description") or ""),
            state=str(data["state"]),
            labels=tuple(str(lb) for lb in labels),
            assignees=tuple(a for a in assignees if a),
            author=_username(data.get("author")) or "",
            web_url=str(data["web_url"]),
            reference=reference,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise _Unreadable("not an issue") from e


__all__ = [
    "CALL_BUDGET",
    "CALL_LIMIT",
    "SYSTEM",
    "TOKEN_REJECTED",
    "UNAVAILABLE",
    "GitLabClient",
    "GitLabUser",
    "Issue",
    "TasksPort",
]
