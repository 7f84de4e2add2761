"""GitLab: the ports the bot uses for tasks (issues, users) and builds (pipelines, jobs, refs),
and their python-gitlab adapter.

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

Creating an issue or a pipeline is not idempotent, and python-gitlab would repeat a POST that
may have reached GitLab. So every create carries the request's marker into GitLab (a line the
issue's description ends with, an `OPSLOOP_REQUEST` pipeline variable) and is never repeated
blindly: after an answer that says GitLab finished with it (500, 503) the adapter looks for the
marker once and posts again only if it is not there; after no answer at all (a time-out, a
dropped connection, 502 or 504 from a proxy: GitLab may still be working on it) it only looks,
for as long as the call's time allows, and then raises `OutcomeUnknown` instead of posting
again (bot/once.py decides later). `find_issue` and `find_pipeline` look by marker alone, never
by title or author: two people may ask for the same thing. Cancelling a pipeline is
idempotent, and repeating a retry finds nothing left to retry (the failed jobs have already
been replaced), so python-gitlab may repeat those two POSTs itself.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from itertools import islice
from typing import Any, ClassVar, Protocol, TypeVar
from urllib.parse import urlsplit

import gitlab
import gitlab.exceptions
from gitlab.utils import EncodedId

from bot.errors import IntegrationError, OutcomeUnknown

SYSTEM = "GitLab"

CALL_BUDGET = 24.0  # seconds every attempt of one port call may take together
CALL_LIMIT = 25.0  # the awaiting coroutine's own limit, in case a thread overruns the budget
_MIN_ATTEMPT = 0.5  # an attempt with less time than this is not started
_GITLAB_BACKOFF = 0.1  # python-gitlab's pause before its first retry, doubled for each further
_RATE_LIMIT_BACKOFF = 1.0  # pause after a 429 without Retry-After, doubled for each further
_MAX_REASON = 300  # characters of GitLab's own explanation passed on to a person
_STATES = ("opened", "closed", "all")
_RECOVER_LOOKBACK = 20  # pipelines a look goes through for the one a request made
# The marker a created issue's description ends with: an HTML comment, so GitLab does not show
# it, holding one word, so GitLab's search (word or substring) finds it.
_ISSUE_MARKER = "<!-- opsloop request {} -->"
_ISSUE_MARKER_AT_END = re.compile(r"\s*<!-- opsloop request \w+ -->\s*$")
# The pipeline variable that carries a request's marker.
REQUEST_VARIABLE = "OPSLOOP_REQUEST"
_LOOK_PAUSE = 1.0  # first pause between looks for a create that got no answer, doubled to 4 s
_CLOCKS_APART = timedelta(minutes=10)  # how far GitLab's clock may be behind ours, for a look
# Job statuses in which playing would start the job; and those of a job already under way or
# finished, which a play must leave alone (GitLab would retry a finished manual job).
_PLAYABLE = frozenset({"manual", "scheduled"})
_STARTED = frozenset(
    {
        "waiting_for_resource",
        "preparing",
        "pending",
        "running",
        "waiting_for_callback",
        "canceling",
        "success",
        "failed",
        "canceled",
    }
)

UNAVAILABLE = "GitLab is unavailable, try again"
UNANSWERED = "GitLab did not answer in time"
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


@dataclass(frozen=True)
class Pipeline:
    """A GitLab pipeline as the bot follows it. `status` is GitLab's, kept as it comes (an open
    set: created, waiting_for_resource, preparing, pending, running, success, failed, canceled,
    canceling, skipped, manual, scheduled, waiting_for_callback, ...)."""

    project: str  # path with namespace, as the caller named it
    id: int
    iid: int | None
    ref: str
    sha: str
    status: str
    source: str  # "api", "push", "web", "schedule", ...
    web_url: str
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None  # seconds, once finished
    user: str | None  # the username that started it


@dataclass(frozen=True)
class PipelineJob:
    """One job of a pipeline (retried jobs are left out: each is replaced by its retry)."""

    id: int
    name: str
    stage: str
    status: str
    web_url: str
    duration: float | None
    failure_reason: str | None  # "script_failure", ... when failed
    allow_failure: bool


@dataclass(frozen=True)
class TestSummary:
    """A pipeline's test report summary: counts of test cases, and the suites with failures."""

    __test__: ClassVar[bool] = False  # not a pytest test class, whatever its name

    total: int
    success: int
    failed: int
    skipped: int
    error: int
    suites_failed: tuple[str, ...]


class TasksPort(Protocol):
    """What the bot needs from GitLab for tasks."""

    async def create_issue(
        self,
        project: str,
        title: str,
        *,
        marker: str,
        description: str = "",
        labels: Sequence[str] = (),
        assignee: str | None = None,
    ) -> Issue:
        """File an issue in `project` (a path), assigned to a GitLab username if given, carrying
        the request's `marker` so that `find_issue` finds it. A failure after which GitLab may
        still file it raises OutcomeUnknown; it is never filed twice by a retry."""
        ...

    async def find_issue(self, project: str, marker: str, since: float) -> Issue | None:
        """The issue filed with `marker` (at or after the Unix time `since`), or None."""
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


class BuildsPort(Protocol):
    """What the bot needs from GitLab for builds. `project` is a path ("acme/web")."""

    async def ref_exists(self, project: str, ref: str) -> str | None:
        """The kind of ref `ref` names: "branch" or "tag" (branches first), else None."""
        ...

    async def default_branch(self, project: str) -> str:
        """The project's default branch."""
        ...

    async def create_pipeline(
        self, project: str, ref: str, variables: Mapping[str, str], *, marker: str
    ) -> Pipeline:
        """Start a pipeline on a branch or tag with these variables, carrying the request's
        `marker` so that `find_pipeline` finds it. A failure after which GitLab may still start
        it raises OutcomeUnknown; it is never started twice by a retry."""
        ...

    async def find_pipeline(
        self, project: str, ref: str, marker: str, since: float
    ) -> Pipeline | None:
        """The pipeline started on `ref` with `marker` (at or after the Unix time `since`)."""
        ...

    async def get_pipeline(self, project: str, pipeline_id: int) -> Pipeline:
        """One pipeline by its id (not its iid)."""
        ...

    async def latest_pipeline(self, project: str, ref: str | None = None) -> Pipeline | None:
        """The newest pipeline (on `ref` if given), or None when there is none."""
        ...

    async def pipeline_jobs(self, project: str, pipeline_id: int) -> list[PipelineJob]:
        """The pipeline's current jobs, oldest first."""
        ...

    async def cancel_pipeline(self, project: str, pipeline_id: int) -> Pipeline:
        """Cancel what has not finished; cancelling a finished pipeline is not an error."""
        ...

    async def retry_pipeline(self, project: str, pipeline_id: int) -> Pipeline:
        """Run the failed and canceled jobs again (they get new job ids)."""
        ...

    async def test_summary(self, project: str, pipeline_id: int) -> TestSummary | None:
        """The test report summary, or None when the pipeline reported no tests."""
        ...


class DeploysPort(Protocol):
    """What the GitLab deployer needs beyond builds: the manual jobs a canary step plays."""

    async def play_job(self, project: str, job_id: int) -> PipelineJob:
        """Start a manual job. A job already started (pending, running or finished, e.g. played
        before a crash) comes back as it is and is never started twice; a job that cannot be
        played (still `created` behind earlier stages, skipped) is an IntegrationError."""
        ...

    async def get_job(self, project: str, job_id: int) -> PipelineJob:
        """One job by its id."""
        ...

    async def retry_job(self, project: str, job_id: int) -> PipelineJob:
        """Run a failed or canceled job again; GitLab makes a new job of the same name, which
        is returned. Never twice: once the pipeline has a newer job of that name (a retry
        made before a crash, or by a person in GitLab), that job is returned instead."""
        ...


class GitLabPort(TasksPort, BuildsPort, DeploysPort, Protocol):
    """Everything the bot asks of GitLab."""


class _Unreadable(ValueError):
    """GitLab's answer did not have the shape its API describes."""


class _OutOfTime(Exception):
    """Too little of the call's budget is left to start another attempt."""


class _Problem(Exception):
    """A failure whose message is ready to be shown as it is."""


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
    thing: str | None = None  # the record asked for, for a 404: "pipeline #12 of acme/web"
    refused: str = "GitLab refused it"  # how a 4xx with GitLab's reason begins


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
    """`TasksPort`, `BuildsPort` and `DeploysPort` over GitLab's REST API v4, through
    python-gitlab."""

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
        return f"GitLabClient({self._where!r})"

    # -- the port -------------------------------------------------------------------------

    async def create_issue(
        self,
        project: str,
        title: str,
        *,
        marker: str,
        description: str = "",
        labels: Sequence[str] = (),
        assignee: str | None = None,
    ) -> Issue:
        """File an issue (`POST /projects/:id/issues`) ending with the request's marker; never
        twice (see the module's docstring)."""
        started = time.time()
        marked = description.rstrip() + "\n\n" + _ISSUE_MARKER.format(marker)
        data: dict[str, Any] = {"title": title, "description": marked.lstrip()}
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
            return _marked_issue(c, project, marker, started)

        return await self._call(create, _Target(project), recover=made_already, resend=False)

    async def find_issue(self, project: str, marker: str, since: float) -> Issue | None:
        """`GET /projects/:id/issues?search=<marker>`, then the token's own recent issues in case
        GitLab's search index lags; the description must end with the marker."""
        return await self._call(
            lambda c: _marked_issue(c, project, marker, since), _Target(project)
        )

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

    # -- builds ---------------------------------------------------------------------------

    async def ref_exists(self, project: str, ref: str) -> str | None:
        """Whether `ref` is a "branch" or a "tag" (`GET .../repository/branches/:ref`, then
        `.../tags/:ref`); None when it is neither."""
        if not ref.strip():
            return None

        def lookup(c: _Call) -> str | None:
            lazy = c.gl.projects.get(project, lazy=True)
            managers: tuple[tuple[str, Any], ...] = (("branch", lazy.branches), ("tag", lazy.tags))
            for kind, manager in managers:
                try:
                    manager.get(ref, **c.opts())
                    return kind
                except gitlab.exceptions.GitlabGetError as e:
                    if not _ref_missing(e):
                        raise
            return None

        return await self._call(lookup, _Target(project))

    async def default_branch(self, project: str) -> str:
        """The project's default branch (`GET /projects/:id`)."""

        def get(c: _Call) -> str:
            branch = c.gl.projects.get(project, **c.opts()).attributes.get("default_branch")
            if not isinstance(branch, str) or not branch:
                raise _Problem(
                    f"GitLab project `{project}` has no default branch (no commits yet?)"
                )
            return branch

        return await self._call(get, _Target(project))

    async def create_pipeline(
        self, project: str, ref: str, variables: Mapping[str, str], *, marker: str
    ) -> Pipeline:
        """Start a pipeline (`POST /projects/:id/pipeline`) with the request's marker in the
        `OPSLOOP_REQUEST` variable; never twice (see the module's docstring).

        A project that lets nobody set pipeline variables refuses the marker too; a pipeline
        without variables of its own is then started without it, and cannot be found again.
        """
        started = time.time()
        wanted = {str(k): str(v) for k, v in variables.items()}
        if REQUEST_VARIABLE in wanted:
            raise IntegrationError(
                SYSTEM, f"`{REQUEST_VARIABLE}` is opsloop's own variable; give yours another name"
            )
        marked = {**wanted, REQUEST_VARIABLE: marker}
        data: dict[str, Any] = {
            "ref": ref,
            "variables": [{"key": k, "value": v} for k, v in marked.items()],
        }

        def create(c: _Call) -> Pipeline:
            pipelines = c.gl.projects.get(project, lazy=True).pipelines
            try:
                made = pipelines.create(data, **c.opts(repeat=False))
            except gitlab.exceptions.GitlabError as e:
                if wanted or not _variables_refused(e):
                    raise
                made = pipelines.create({"ref": ref}, **c.opts(repeat=False))
            return _pipeline(made.attributes, project)

        def made_already(c: _Call) -> Pipeline | None:
            return _marked_pipeline(c, project, ref, marker, started, self._username(c))

        target = _Target(project, refused=f"GitLab refused to start a pipeline on `{ref}`")
        return await self._call(create, target, recover=made_already, resend=False)

    async def find_pipeline(
        self, project: str, ref: str, marker: str, since: float
    ) -> Pipeline | None:
        """The newest pipelines this token started on `ref` since then (`GET .../pipelines`),
        each one's variables read (`GET .../pipelines/:id/variables`) for the marker."""

        def find(c: _Call) -> Pipeline | None:
            return _marked_pipeline(c, project, ref, marker, since, self._username(c))

        return await self._call(find, _Target(project))

    async def get_pipeline(self, project: str, pipeline_id: int) -> Pipeline:
        """One pipeline (`GET /projects/:id/pipelines/:pipeline_id`)."""

        def get(c: _Call) -> Pipeline:
            pipelines = c.gl.projects.get(project, lazy=True).pipelines
            return _pipeline(pipelines.get(pipeline_id, **c.opts()).attributes, project)

        return await self._call(get, _pipeline_target(project, pipeline_id))

    async def latest_pipeline(self, project: str, ref: str | None = None) -> Pipeline | None:
        """The newest pipeline by id (`GET .../pipelines?order_by=id&sort=desc`), on `ref` if
        given, read in full; None when there is none."""
        filters: dict[str, Any] = {"ref": ref} if ref else {}

        def latest(c: _Call) -> Pipeline | None:
            pipelines = c.gl.projects.get(project, lazy=True).pipelines
            found = pipelines.list(
                order_by="id", sort="desc", per_page=1, get_all=False, **filters, **c.opts()
            )
            if not found:
                return None
            full = pipelines.get(found[0].get_id(), **c.opts())
            return _pipeline(full.attributes, project)

        return await self._call(latest, _Target(project))

    async def pipeline_jobs(self, project: str, pipeline_id: int) -> list[PipelineJob]:
        """The pipeline's jobs without the retried ones (`GET .../pipelines/:id/jobs`), oldest
        first."""

        return await self._call(
            lambda c: _pipeline_jobs(c, project, pipeline_id),
            _pipeline_target(project, pipeline_id),
        )

    async def cancel_pipeline(self, project: str, pipeline_id: int) -> Pipeline:
        """Cancel it (`POST .../pipelines/:id/cancel`); a finished pipeline stays as it is."""
        return await self._pipeline_action(project, pipeline_id, "cancel")

    async def retry_pipeline(self, project: str, pipeline_id: int) -> Pipeline:
        """Retry its failed and canceled jobs (`POST .../pipelines/:id/retry`)."""
        return await self._pipeline_action(project, pipeline_id, "retry")

    async def test_summary(self, project: str, pipeline_id: int) -> TestSummary | None:
        """`GET .../pipelines/:id/test_report_summary`; None when no job reported tests."""

        def summary(c: _Call) -> TestSummary | None:
            path = f"{_project_path(project)}/pipelines/{pipeline_id}/test_report_summary"
            return _summary(c.gl.http_get(path, **c.opts()))

        return await self._call(summary, _pipeline_target(project, pipeline_id))

    # -- deploys --------------------------------------------------------------------------

    async def play_job(self, project: str, job_id: int) -> PipelineJob:
        """Start a manual job (`POST /projects/:id/jobs/:job_id/play`), once.

        The job is read first and played only while it is `manual` (or `scheduled`): GitLab
        would run a finished manual job again if asked to play it, so a repeat (after a crash,
        or of a request whose answer was lost) must not reach the play endpoint. A play GitLab
        refuses as `Unplayable Job` because someone else started the job meanwhile is not a
        failure either; the job is read again and returned.
        """

        def play(c: _Call) -> PipelineJob:
            found = _job(_read_job(c, project, job_id))
            if found.status in _STARTED:
                return found
            if found.status not in _PLAYABLE:
                raise _Problem(_unplayable(project, found))
            try:
                return _post_for_job(c, f"{_project_path(project)}/jobs/{job_id}/play")
            except gitlab.exceptions.GitlabError as e:
                if e.response_code != 400:
                    raise
                again = _job(_read_job(c, project, job_id))
                if again.status in _STARTED:
                    return again
                raise _Problem(_unplayable(project, again)) from e

        def played_already(c: _Call) -> PipelineJob | None:
            # A play whose answer was lost: the job is no longer waiting, so it went through.
            found = _job(_read_job(c, project, job_id))
            return found if found.status in _STARTED else None

        return await self._call(play, _job_target(project, job_id), recover=played_already)

    async def retry_job(self, project: str, job_id: int) -> PipelineJob:
        """Run a failed or canceled job again (`POST /projects/:id/jobs/:job_id/retry`), once.

        The job's pipeline is read first: a newer job of the same name means the job was
        retried already (before a crash, by a request whose answer was lost, or by a person in
        GitLab), and that newer job is returned without asking GitLab to retry again.
        """

        def newer(c: _Call) -> PipelineJob | None:
            job = _read_job(c, project, job_id)
            pipeline_id = int((job.get("pipeline") or {}).get("id", 0))
            jobs = _pipeline_jobs(c, project, pipeline_id)
            later = [j for j in jobs if j.name == job["name"] and j.id > job_id]
            return later[-1] if later else None  # oldest first: the last is the newest

        def retry(c: _Call) -> PipelineJob:
            already = newer(c)
            if already is not None:
                return already
            try:
                return _post_for_job(c, f"{_project_path(project)}/jobs/{job_id}/retry")
            except gitlab.exceptions.GitlabError as e:
                if e.response_code != 403:
                    raise
                job = _job(_read_job(c, project, job_id))
                raise _Problem(
                    f"GitLab cannot retry job {job.name} (#{job.id}) of {project}: it is "
                    f"{job.status}, and only a failed or canceled job can run again; "
                    f"see {job.web_url}"
                ) from e

        return await self._call(retry, _job_target(project, job_id), recover=newer)

    async def get_job(self, project: str, job_id: int) -> PipelineJob:
        """One job (`GET /projects/:id/jobs/:job_id`)."""

        def get(c: _Call) -> PipelineJob:
            return _job(_read_job(c, project, job_id))

        return await self._call(get, _job_target(project, job_id))

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

    async def _pipeline_action(self, project: str, pipeline_id: int, action: str) -> Pipeline:
        def act(c: _Call) -> Pipeline:
            path = f"{_project_path(project)}/pipelines/{pipeline_id}/{action}"
            answer = c.gl.http_post(path, **c.opts())
            if not isinstance(answer, dict):
                raise _Unreadable("not a pipeline")
            return _pipeline(answer, project)

        return await self._call(act, _pipeline_target(project, pipeline_id))

    def _username(self, c: _Call) -> str:
        """The token's own username (`GET /user`), asked once."""
        if self._me is None:
            data = c.gl.http_get("/user", **c.opts())
            if not isinstance(data, dict) or not isinstance(data.get("username"), str):
                raise _Unreadable("no user")
            self._me = str(data["username"])
        return self._me

    async def _call(
        self,
        work: Callable[[_Call], T],
        target: _Target,
        *,
        recover: Callable[[_Call], T | None] | None = None,
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
                raise OutcomeUnknown(SYSTEM, UNANSWERED) from e
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
        resend: bool,
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
                if recover is not None and not resend and _unanswered(e):
                    return _look_until(recover, connection, deadline, self._timeout)
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
        if isinstance(e, _Problem):
            return IntegrationError(SYSTEM, str(e))
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


def _look_until(
    recover: Callable[[_Call], T | None], connection: _Connection, deadline: float, timeout: float
) -> T:
    """Look for what a create that got no answer made, until the call's time is up; GitLab may
    still be working on it, so it is never sent again here."""
    pause = _LOOK_PAUSE
    while time.monotonic() + pause + _MIN_ATTEMPT < deadline:
        time.sleep(pause)
        pause = min(pause * 2, 4 * _LOOK_PAUSE)
        try:
            found = recover(_Call(connection, deadline, timeout, 0))
        except Exception:
            continue  # GitLab is struggling: look again while there is time
        if found is not None:
            return found
    raise OutcomeUnknown(SYSTEM, UNANSWERED)


def _unanswered(e: BaseException) -> bool:
    """Whether a request may have reached GitLab, which may still be working on it: no answer
    (a read time-out, a connection dropped after sending) or a proxy's 502/504."""
    status = _status(e)
    if status is not None:
        return status in (502, 504)
    names = {cls.__name__ for cls in type(e).__mro__}
    if "ConnectTimeout" in names or _is_tls(e):
        return False  # never connected: nothing was sent
    if "Timeout" in names or "ChunkedEncodingError" in names:
        return True
    if "ConnectionError" in names and e.args:
        # requests wraps urllib3's reason: a refused or failed connection sent nothing.
        reason = type(getattr(e.args[0], "reason", e.args[0])).__name__
        return reason not in ("NewConnectionError", "ConnectTimeoutError", "NameResolutionError")
    return False


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
        return IntegrationError(SYSTEM, f"{target.refused}: {reason or f'answer {status}'}")
    return IntegrationError(SYSTEM, f"GitLab answered {status}")


def _not_found(reason: str, target: _Target) -> str:
    # GitLab says "404 Project Not Found" for the project and "404 Not found" for the record.
    project_missing = "project" in reason.lower()
    if target.iid is not None and target.project and not project_missing:
        return f"issue {target.project}#{target.iid} was not found"
    if target.thing is not None and target.project and not project_missing:
        return f"{target.thing} was not found"
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
            # The request's marker is opsloop's own business, not the person's.
            description=_ISSUE_MARKER_AT_END.sub("", str(data.get("description") or "")),
            state=str(data["state"]),
            labels=tuple(str(lb) for lb in labels),
            assignees=tuple(a for a in assignees if a),
            author=_username(data.get("author")) or "",
            web_url=str(data["web_url"]),
            reference=reference,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise _Unreadable("not an issue") from e


def _project_path(project: str) -> str:
    """`/projects/acme%2Fweb`: the project's API path for requests made without a manager."""
    return f"/projects/{EncodedId(project)}"


def _pipeline_target(project: str, pipeline_id: int) -> _Target:
    return _Target(project, thing=f"pipeline #{pipeline_id} of {project}")


def _job_target(project: str, job_id: int) -> _Target:
    return _Target(project, thing=f"job #{job_id} of {project}")


def _marked_issue(c: _Call, project: str, marker: str, since: float) -> Issue | None:
    """The issue whose description ends with `marker`, filed at or after `since`: found by
    GitLab's search, else among the token's own issues filed since (search may lag)."""
    issues = c.gl.projects.get(project, lazy=True).issues
    after = (datetime.fromtimestamp(since, UTC) - _CLOCKS_APART).isoformat()
    wanted = _ISSUE_MARKER.format(marker)
    queries: tuple[dict[str, Any], ...] = (
        {"search": marker, "in": "description"},
        {"scope": "created_by_me"},
    )
    for query in queries:
        found = issues.list(
            created_after=after,
            order_by="created_at",
            sort="desc",
            per_page=100,
            get_all=False,
            **query,
            **c.opts(),
        )
        for candidate in found:
            description = str(candidate.attributes.get("description") or "")
            if description.rstrip().endswith(wanted):
                return _issue(candidate.attributes, project)
    return None


def _marked_pipeline(
    c: _Call, project: str, ref: str, marker: str, since: float, username: str
) -> Pipeline | None:
    """The pipeline on `ref` whose `OPSLOOP_REQUEST` variable is `marker`, among the newest this
    token started since `since`."""
    pipelines = c.gl.projects.get(project, lazy=True).pipelines
    recent = pipelines.list(
        ref=ref,
        source="api",
        username=username,
        updated_after=(datetime.fromtimestamp(since, UTC) - _CLOCKS_APART).isoformat(),
        order_by="id",
        sort="desc",
        per_page=_RECOVER_LOOKBACK,
        get_all=False,
        **c.opts(),
    )
    for candidate in recent:
        pid = int(candidate.get_id() or 0)
        path = f"{_project_path(project)}/pipelines/{pid}/variables"
        found = c.gl.http_get(path, **c.opts())
        if isinstance(found, list) and _variables(found).get(REQUEST_VARIABLE) == marker:
            return _pipeline(pipelines.get(pid, **c.opts()).attributes, project)
    return None


def _variables_refused(e: gitlab.exceptions.GitlabError) -> bool:
    """GitLab's refusal of any pipeline variable (`restrict_user_defined_variables`)."""
    reason = _reason(e.error_message).lower()
    return (
        e.response_code in (400, 403)
        and "insufficient permissions to set pipeline variables" in reason
    )


def _pipeline_jobs(c: _Call, project: str, pipeline_id: int) -> list[PipelineJob]:
    """The pipeline's jobs without the retried ones, oldest first."""
    path = f"{_project_path(project)}/pipelines/{pipeline_id}/jobs"
    found = c.gl.http_list(path, query_data={"per_page": 100}, get_all=True, **c.opts())
    return sorted((_job(j) for j in _dicts(found)), key=lambda j: j.id)


def _read_job(c: _Call, project: str, job_id: int) -> dict[str, Any]:
    attributes: dict[str, Any] = (
        c.gl.projects.get(project, lazy=True).jobs.get(job_id, **c.opts()).attributes
    )
    return attributes


def _post_for_job(c: _Call, path: str) -> PipelineJob:
    """POST an action on a job (play, retry) and read the job GitLab answers with; posted
    directly, since python-gitlab's ProjectJob.play() only returns the job in newer versions."""
    answer = c.gl.http_post(path, **c.opts(repeat=False))
    if not isinstance(answer, dict):
        raise _Unreadable("not a job")
    return _job(answer)


def _unplayable(project: str, job: PipelineJob) -> str:
    """Why a job cannot be played, for a person: GitLab itself only says `Unplayable Job`."""
    named = f"job {job.name} (#{job.id}) of {project}"
    if job.status == "created":
        why = f"GitLab cannot play {named} yet: it waits for earlier stages of its pipeline"
    elif job.status == "skipped":
        why = f"GitLab cannot play {named}: it was skipped because an earlier stage failed"
    else:
        why = f"GitLab refused to play {named} (it is {job.status}: Unplayable Job)"
    return f"{why}; see {job.web_url}"


def _ref_missing(e: gitlab.exceptions.GitlabError) -> bool:
    """GitLab's `404 Branch Not Found` or `404 Tag Not Found` (not a missing project)."""
    reason = _reason(e.error_message).lower()
    return e.response_code == 404 and ("branch not found" in reason or "tag not found" in reason)


def _dicts(found: object) -> list[dict[str, Any]]:
    if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
        raise _Unreadable("not a list of objects")
    return found


def _moment(value: object) -> datetime | None:
    """GitLab's ISO 8601 timestamps (`2024-01-01T10:00:00.000Z`), as aware datetimes."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("not a timestamp")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _seconds(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("not a number of seconds")
    return float(value)


def _pipeline(data: dict[str, Any], project: str) -> Pipeline:
    try:
        iid = data.get("iid")
        return Pipeline(
            project=project,
            id=int(data["id"]),
            iid=int(iid) if iid is not None else None,
            ref=str(data["ref"]),
            sha=str(data["sha"]),
            status=str(data["status"]),
            source=str(data.get("source") or ""),
            web_url=str(data["web_url"]),
            created_at=_moment(data.get("created_at")),
            started_at=_moment(data.get("started_at")),
            finished_at=_moment(data.get("finished_at")),
            duration=_seconds(data.get("duration")),
            user=_username(data.get("user")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise _Unreadable("not a pipeline") from e


def _job(data: dict[str, Any]) -> PipelineJob:
    try:
        reason = data.get("failure_reason")
        return PipelineJob(
            id=int(data["id"]),
            name=str(data["name"]),
            stage=str(data["stage"]),
            status=str(data["status"]),
            web_url=str(data["web_url"]),
            duration=_seconds(data.get("duration")),
            failure_reason=str(reason) if reason else None,
            allow_failure=bool(data.get("allow_failure", False)),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise _Unreadable("not a job") from e


def _variables(found: list[Any]) -> dict[str, str]:
    """`[{key, value, variable_type}]` as {key: value}."""
    pairs = {}
    for item in found:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            pairs[item["key"]] = str(item.get("value") if item.get("value") is not None else "")
    return pairs


def _summary(data: object) -> TestSummary | None:
    if not isinstance(data, dict):
        raise _Unreadable("not a test report summary")
    try:
        total = data.get("total") or {}
        suites = data.get("test_suites") or []
        count = int(total.get("count") or 0)
        if count == 0 and not suites:
            return None
        failing = tuple(
            str(s["name"])
            for s in suites
            if int(s.get("failed_count") or 0) + int(s.get("error_count") or 0) > 0
        )
        return TestSummary(
            total=count,
            success=int(total.get("success") or 0),
            failed=int(total.get("failed") or 0),
            skipped=int(total.get("skipped") or 0),
            error=int(total.get("error") or 0),
            suites_failed=failing,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise _Unreadable("not a test report summary") from e


__all__ = [
    "CALL_BUDGET",
    "CALL_LIMIT",
    "REQUEST_VARIABLE",
    "SYSTEM",
    "TOKEN_REJECTED",
    "UNANSWERED",
    "UNAVAILABLE",
    "BuildsPort",
    "DeploysPort",
    "GitLabClient",
    "GitLabPort",
    "GitLabUser",
    "Issue",
    "Pipeline",
    "PipelineJob",
    "TasksPort",
    "TestSummary",
]
