"""How every call to GitLab is made: python-gitlab in worker threads, within one time budget,
with repeats that never file or start anything twice.

python-gitlab is synchronous, so every call runs in a worker thread (`asyncio.to_thread`) with
its own `gitlab.Gitlab` (a requests.Session is not safe to share between threads). The calls
return the bot's own frozen types (shapes.py) and turn every failure into one
`IntegrationError("GitLab", ...)` (errors.py).

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

Look, don't resend: creating an issue or a pipeline is not idempotent, and python-gitlab would
repeat a POST that may have reached GitLab. So a create carries the request's marker into GitLab
(issues.py, pipelines.py) and `GitLabCalls._call` is given a `recover` that looks for it: after an
answer that says GitLab finished with it (500, 503) the marker is looked for once and the POST
sent again only if it is not there; after no answer at all (a time-out, a dropped connection,
502 or 504 from a proxy: GitLab may still be working on it) it is only looked for, for as long as
the call's time allows, and then `OutcomeUnknown` is raised instead of posting again
(bot/once.py decides later).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import gitlab

from integrations.gitlab.errors import (
    SYSTEM,
    OutOfTime,
    Target,
    Unreadable,
    as_integration_error,
    outcome_unknown,
    status_of,
    transient,
    unanswered,
    unavailable,
)

CALL_BUDGET = 24.0  # seconds every attempt of one port call may take together
CALL_LIMIT = 25.0  # the awaiting coroutine's own limit, in case a thread overruns the budget
_MIN_ATTEMPT = 0.5  # an attempt with less time than this is not started
_GITLAB_BACKOFF = 0.1  # python-gitlab's pause before its first retry, doubled for each further
_RATE_LIMIT_BACKOFF = 1.0  # pause after a 429 without Retry-After, doubled for each further
CLOCKS_APART = timedelta(minutes=10)  # how far GitLab's clock may be behind ours, for a look
_LOOK_PAUSE = 1.0  # first pause between looks for a create that got no answer, doubled to 4 s

T = TypeVar("T")


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


class Call:
    """One attempt's view of the call's budget: the client, and the options for each
    python-gitlab request."""

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
            raise OutOfTime
        return {
            "timeout": per_attempt,
            "max_retries": retries,
            "retry_transient_errors": repeat,
            "obey_rate_limit": False,  # 429 is retried by the adapter, within the budget
        }


class GitLabCalls:
    """The connection to one GitLab and the machinery every call goes through; the calls
    themselves are in issues.py, pipelines.py and jobs.py."""

    system = SYSTEM

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 2,
        budget: float = CALL_BUDGET,
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL")
        if timeout <= 0 or max_retries < 0 or budget <= 0:
            raise ValueError("timeout and budget must be positive and max_retries not negative")
        self._url = url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._max_retries = max_retries
        self._budget = budget  # seconds one port call may take, every attempt included
        self._where = parts.hostname + (f":{parts.port}" if parts.port else "")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[_Connection] = []
        self._me: str | None = None  # the token's username, once asked

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._where!r})"

    async def close(self) -> None:
        """Release the connections of every worker thread."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    def _username(self, c: Call) -> str:
        """The token's own username (`GET /user`), asked once."""
        if self._me is None:
            data = c.gl.http_get("/user", **c.opts())
            if not isinstance(data, dict) or not isinstance(data.get("username"), str):
                raise Unreadable("no user")
            self._me = str(data["username"])
        return self._me

    async def _call(
        self,
        work: Callable[[Call], T],
        target: Target,
        *,
        recover: Callable[[Call], T | None] | None = None,
        resend: bool = True,
    ) -> T:
        """Run `work` in a worker thread within the call's budget. `recover` finds what an
        earlier attempt made; with `resend=False` (a create) work that may have reached GitLab
        without an answer is never repeated, only looked for (see the module's docstring)."""
        deadline = time.monotonic() + self._budget
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self._attempts, work, target, deadline, recover, resend),
                timeout=self._budget + CALL_LIMIT - CALL_BUDGET,
            )
        except TimeoutError as e:
            if not resend:  # the thread overran: its POST may be under way
                raise outcome_unknown() from e
            raise unavailable() from e

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
        work: Callable[[Call], T],
        target: Target,
        deadline: float,
        recover: Callable[[Call], T | None] | None,
        resend: bool,
    ) -> T:
        """Runs `work` in this worker thread, repeating it after 429 (and, for a non-idempotent
        call with `recover`, after transient failures), and maps the final failure."""
        connection = self._connection()
        # Non-idempotent work is repeated here, not by python-gitlab, so `recover` runs first.
        retries = self._max_retries if recover is None else 0
        attempt = 0
        while True:
            call = Call(connection, deadline, self._timeout, retries)
            try:
                return work(call)
            except Exception as e:
                if recover is not None and not resend and unanswered(e):
                    return _look_until(recover, connection, deadline, self._timeout)
                pause = self._pause(e, connection, attempt, recover is not None)
                if pause is None or time.monotonic() + pause + _MIN_ATTEMPT > deadline:
                    found = _maybe_made(recover, call, e)
                    if found is not None:
                        return found
                    raise as_integration_error(e, target, self._where) from e
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
        if status_of(e) == 429:
            return connection.retry_after or _RATE_LIMIT_BACKOFF * 2.0**attempt
        if repeats_transient and transient(e):
            return _GITLAB_BACKOFF * 2.0**attempt
        return None


def _look_until(
    recover: Callable[[Call], T | None], connection: _Connection, deadline: float, timeout: float
) -> T:
    """Look for what a create that got no answer made, until the call's time is up; GitLab may
    still be working on it, so it is never sent again here."""
    pause = _LOOK_PAUSE
    while time.monotonic() + pause + _MIN_ATTEMPT < deadline:
        time.sleep(pause)
        pause = min(pause * 2, 4 * _LOOK_PAUSE)
        try:
            found = recover(Call(connection, deadline, timeout, 0))
        except Exception:
            continue  # GitLab is struggling: look again while there is time
        if found is not None:
            return found
    raise outcome_unknown()


def _maybe_made(recover: Callable[[Call], T | None] | None, call: Call, e: Exception) -> T | None:
    """What `recover` finds after a failure that may have reached GitLab; None otherwise."""
    if recover is None or not transient(e) or status_of(e) == 429:
        return None
    try:
        return recover(call)
    except Exception:
        return None  # the caller reports the original failure


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
