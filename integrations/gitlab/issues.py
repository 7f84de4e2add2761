"""GitLab's issues and users, in GitLab's own words: the calls tasks.py builds the task tracker
on.

Filing an issue is not idempotent, so the issue's description ends with the request's marker (an
HTML comment GitLab does not show), and a create that may have reached GitLab is looked for by
that marker before it is ever sent again (client.py). `find_issue` looks by marker alone, never
by title or author: two people may ask for the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from integrations.gitlab.client import CLOCKS_APART, Call, GitLabCalls
from integrations.gitlab.errors import NoSuchUser, Target, Unreadable
from integrations.gitlab.shapes import ISSUE_MARKER, GitLabUser, Issue, issue_from, user_from

STATES = ("opened", "closed", "all")


class GitLabIssues(GitLabCalls):
    """Issues (`/projects/:id/issues`), users (`/users`) and the version, through python-gitlab."""

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
        twice (see client.py's docstring)."""
        started = time.time()
        marked = description.rstrip() + "\n\n" + ISSUE_MARKER.format(marker)
        data: dict[str, Any] = {"title": title, "description": marked.lstrip()}
        if labels:
            data["labels"] = ",".join(labels)

        def create(c: Call) -> Issue:
            if assignee is not None:
                user = _user_named(c, assignee)
                if user is None:
                    raise NoSuchUser(assignee)
                data["assignee_ids"] = [user.id]
            issues = c.gl.projects.get(project, lazy=True).issues
            made = issues.create(data, **c.opts(repeat=False))
            return issue_from(made.attributes, project)

        def made_already(c: Call) -> Issue | None:
            return _marked_issue(c, project, marker, started)

        return await self._call(create, Target(project), recover=made_already, resend=False)

    async def find_issue(self, project: str, marker: str, since: float) -> Issue | None:
        """`GET /projects/:id/issues?search=<marker>`, then the token's own recent issues in case
        GitLab's search index lags; the description must end with the marker."""
        return await self._call(lambda c: _marked_issue(c, project, marker, since), Target(project))

    async def list_issues(
        self, project: str, *, state: str = "opened", assignee: str | None = None, limit: int = 20
    ) -> list[Issue]:
        """Newest first (`GET /projects/:id/issues`), at most `limit`; `state` is "opened",
        "closed" or "all"; `assignee` a username."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        if limit < 1:
            return []
        filters: dict[str, Any] = {"state": state, "order_by": "created_at", "sort": "desc"}
        if assignee is not None:
            filters["assignee_username"] = assignee

        def list_(c: Call) -> list[Issue]:
            issues = c.gl.projects.get(project, lazy=True).issues
            pages = issues.list(iterator=True, per_page=min(limit, 100), **filters, **c.opts())
            return [issue_from(i.attributes, project) for i in islice(pages, limit)]

        return await self._call(list_, Target(project))

    async def get_issue(self, project: str, iid: int) -> Issue:
        """One issue (`GET /projects/:id/issues/:iid`)."""

        def get(c: Call) -> Issue:
            issue = c.gl.projects.get(project, lazy=True).issues.get(iid, **c.opts())
            return issue_from(issue.attributes, project)

        return await self._call(get, Target(project, iid))

    async def close_issue(self, project: str, iid: int) -> Issue:
        """Close an issue (`PUT .../issues/:iid` with `state_event=close`); closing a closed
        issue is not an error."""
        return await self._edit(project, iid, lambda c: {"state_event": "close"})

    async def assign_issue(self, project: str, iid: int, username: str) -> Issue:
        """Make `username` the only assignee (`PUT .../issues/:iid` with `assignee_ids`)."""

        def change(c: Call) -> dict[str, Any]:
            user = _user_named(c, username)
            if user is None:
                raise NoSuchUser(username)
            return {"assignee_ids": [user.id]}

        return await self._edit(project, iid, change)

    async def user_by_email(self, email: str) -> GitLabUser | None:
        """The account GitLab's user search finds for this address (`GET /users?search=`), or
        None when none (or several) match."""
        wanted = email.strip().lower()

        def search(c: Call) -> GitLabUser | None:
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
            return user_from(chosen[0]) if len(chosen) == 1 else None

        return await self._call(search, Target())

    async def user_by_username(self, username: str) -> GitLabUser | None:
        """The account with this username (`GET /users?username=`), or None."""
        return await self._call(lambda c: _user_named(c, username), Target())

    async def version(self) -> str:
        """GitLab's version (`GET /version`, which needs a valid token)."""

        def version(c: Call) -> str:
            data = c.gl.http_get("/version", **c.opts())
            if not isinstance(data, dict) or not isinstance(data.get("version"), str):
                raise Unreadable("no version")
            return str(data["version"])

        missing = f"there is no GitLab API at {self._where}; check OPSLOOP_GITLAB_URL"
        return await self._call(version, Target(missing=missing))

    async def _edit(
        self, project: str, iid: int, change: Callable[[Call], dict[str, Any]]
    ) -> Issue:
        def edit(c: Call) -> Issue:
            issues = c.gl.projects.get(project, lazy=True).issues
            return issue_from(issues.update(iid, change(c), **c.opts()), project)

        return await self._call(edit, Target(project, iid))


def _user_named(c: Call, username: str) -> GitLabUser | None:
    wanted = username.lstrip("@")
    for user in c.gl.users.list(username=wanted, get_all=False, **c.opts()):
        data = user.attributes
        if str(data.get("username", "")).lower() == wanted.lower():
            return user_from(data)
    return None


def _marked_issue(c: Call, project: str, marker: str, since: float) -> Issue | None:
    """The issue whose description ends with `marker`, filed at or after `since`: found by
    GitLab's search, else among the token's own issues filed since (search may lag)."""
    issues = c.gl.projects.get(project, lazy=True).issues
    after = (datetime.fromtimestamp(since, UTC) - CLOCKS_APART).isoformat()
    wanted = ISSUE_MARKER.format(marker)
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
                return issue_from(candidate.attributes, project)
    return None
