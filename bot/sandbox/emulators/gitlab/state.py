"""The emulated GitLab's contents: accounts, projects and issues, and the rules for changing them.

Changes follow GitLab's own rules where a client can tell: iids count per project from 1,
labels come back sorted, unknown assignees are dropped silently, a blank title is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from aiohttp import web

from . import shapes
from .hooks import Webhooks, ci_listener
from .http import not_found, unprocessable
from .models import JSON, EmulatedProject, EmulatedUser, IssueRecord
from .pipelines import CI
from .repository import Repositories

MAX_TITLE = 255
MAX_DESCRIPTION = 1_048_576


def _now() -> datetime:
    return datetime.now(UTC)


class GitLabState:
    """Everything the emulated instance holds, and the queries tests make on it."""

    def __init__(
        self,
        *,
        users: Iterable[EmulatedUser],
        projects: Iterable[EmulatedProject],
        token_user: EmulatedUser,
        version: str = "17.5.0",
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.version = version
        self.users: dict[int, EmulatedUser] = {u.id: u for u in users}
        self.users[token_user.id] = token_user
        self.token_user = token_user
        self.projects: dict[int, EmulatedProject] = {p.id: p for p in projects}
        self.clock = clock
        # Set by serve(); web_url and _links use it, else the address a request came to.
        self.url: str | None = None
        self._issues: dict[int, list[IssueRecord]] = {p: [] for p in self.projects}
        self._next_issue_id = 1
        # Branches and tags (repository.py), pipelines (pipelines.py), webhooks (hooks.py).
        self.repos = Repositories(self.projects.values(), clock)
        self.ci = CI(clock)
        self.webhooks = Webhooks(version, self.public_url)
        self.ci.listeners.append(ci_listener(self))

    # -- lookups --------------------------------------------------------------------------

    def public_url(self, request: web.Request | None = None) -> str:
        if self.url:
            return self.url.rstrip("/")
        if request is not None:
            return f"{request.scheme}://{request.host}"
        return "http://gitlab.example"

    def find_project(self, ref: str | int) -> EmulatedProject:
        """A project by numeric id or `namespace/path` (case-insensitive, as GitLab routes)."""
        text = str(ref)
        if text.isdigit():
            found = self.projects.get(int(text))
        else:
            wanted = text.strip("/").lower()
            found = next(
                (p for p in self.projects.values() if p.path_with_namespace.lower() == wanted),
                None,
            )
        if found is None:
            raise not_found("Project")
        return found

    def user(self, user_id: int) -> EmulatedUser | None:
        return self.users.get(user_id)

    def user_named(self, username: str) -> EmulatedUser | None:
        wanted = username.lstrip("@").lower()
        return next((u for u in self.users.values() if u.username.lower() == wanted), None)

    def search_users(self, term: str) -> list[EmulatedUser]:
        """GitLab's user search: part of a name or username, or a whole e-mail address."""
        needle = term.strip().lower()
        if not needle:
            return list(self.users.values())
        found = []
        for u in self.users.values():
            emails = {u.email.lower(), u.public_email.lower()} - {""}
            if needle in emails or needle in u.username.lower() or needle in u.name.lower():
                found.append(u)
        return found

    def project_issues(self, project: EmulatedProject) -> list[IssueRecord]:
        return self._issues.setdefault(project.id, [])

    def all_issues(self) -> list[tuple[EmulatedProject, IssueRecord]]:
        return [(p, i) for p in self.projects.values() for i in self.project_issues(p)]

    def find_issue(self, project: EmulatedProject, iid: int) -> IssueRecord:
        found = next((i for i in self.project_issues(project) if i.iid == iid), None)
        if found is None:
            raise not_found()
        return found

    def issue_json(self, project: EmulatedProject, issue: IssueRecord, base: str) -> JSON:
        return shapes.issue(issue, project, self.user, base)

    def issues(self, project: str | int) -> list[JSON]:
        """The project's issues as GitLab's API shows them, oldest first."""
        p = self.find_project(project)
        return [self.issue_json(p, i, self.public_url()) for i in self.project_issues(p)]

    # -- changes --------------------------------------------------------------------------

    def create_issue(
        self,
        project: EmulatedProject,
        title: str,
        *,
        description: str = "",
        labels: Sequence[str] = (),
        assignee_ids: Sequence[int] = (),
        author: EmulatedUser | None = None,
    ) -> IssueRecord:
        _check_title(title)
        _check_description(description)
        records = self.project_issues(project)
        now = self.clock()
        issue = IssueRecord(
            id=self._next_issue_id,
            iid=max((i.iid for i in records), default=0) + 1,
            project_id=project.id,
            title=title,
            description=description,
            author_id=(author or self.token_user).id,
            created_at=now,
            updated_at=now,
            labels=_labels(labels),
            assignee_ids=self._assignable(assignee_ids),
        )
        self._next_issue_id += 1
        records.append(issue)
        return issue

    def add_issue(
        self,
        project: str | int,
        title: str,
        *,
        description: str = "",
        labels: Sequence[str] = (),
        assignees: Sequence[str] = (),
        author: str | None = None,
        state: str = "opened",
    ) -> JSON:
        """Seed an issue without a request (tests, the sandbox); returns its JSON."""
        p = self.find_project(project)
        ids = [u.id for u in (self.user_named(name) for name in assignees) if u is not None]
        writer = self.user_named(author) if author else None
        issue = self.create_issue(
            p, title, description=description, labels=labels, assignee_ids=ids, author=writer
        )
        if state == "closed":
            self.set_state(issue, "close")
        return self.issue_json(p, issue, self.public_url())

    def update_issue(
        self,
        issue: IssueRecord,
        *,
        title: str | None = None,
        description: str | None = None,
        labels: Sequence[str] | None = None,
        add_labels: Sequence[str] = (),
        remove_labels: Sequence[str] = (),
        assignee_ids: Sequence[int] | None = None,
        state_event: str | None = None,
    ) -> None:
        """Applies an edit as `PUT .../issues/:iid` does; every check first, then the change."""
        if title is not None:
            _check_title(title)
        if description is not None:
            _check_description(description)
        if title is not None:
            issue.title = title
        if description is not None:
            issue.description = description
        current = issue.labels if labels is None else list(labels)
        removed = {r.lower() for r in remove_labels}
        issue.labels = _labels([lb for lb in [*current, *add_labels] if lb.lower() not in removed])
        if assignee_ids is not None:
            # 0 (or nothing) unassigns, as in GitLab.
            issue.assignee_ids = self._assignable([a for a in assignee_ids if a != 0])
        if state_event is not None:
            self.set_state(issue, state_event)
        issue.updated_at = self.clock()

    def set_state(self, issue: IssueRecord, event: str) -> None:
        now = self.clock()
        if event == "close" and issue.state != "closed":
            issue.state, issue.closed_at, issue.closed_by_id = "closed", now, self.token_user.id
        elif event == "reopen" and issue.state != "opened":
            issue.state, issue.closed_at, issue.closed_by_id = "opened", None, None
        issue.updated_at = now

    def _assignable(self, user_ids: Iterable[int]) -> list[int]:
        # GitLab drops assignees it cannot assign rather than refusing the request.
        return list(dict.fromkeys(uid for uid in user_ids if uid in self.users))


def _check_title(title: str) -> None:
    if not title.strip():
        raise unprocessable("title", "can't be blank")
    if len(title) > MAX_TITLE:
        raise unprocessable("title", f"is too long (maximum is {MAX_TITLE} characters)")


def _check_description(description: str) -> None:
    if len(description) > MAX_DESCRIPTION:
        message = f"is too long (maximum is {MAX_DESCRIPTION} characters)"
        raise unprocessable("description", message)


def _labels(names: Iterable[str]) -> list[str]:
    unique: dict[str, str] = {}
    for name in names:
        name = name.strip()
        if name:
            unique.setdefault(name.lower(), name)
    return sorted(unique.values(), key=str.lower)


# Where route handlers find the state they serve: `request.app[STATE]`.
STATE = web.AppKey("gitlab_state", GitLabState)
