"""What the task capability needs from a task tracker (GitLab issues today, Jira tomorrow), in
its own words: a task, the person it is assigned to, and the tracker's reference for it.

A task is known within its project by its `key`, a string the tracker chooses ("12" for GitLab's
issue acme/web#12, "WEB-12" for Jira's), and shown to people as its `reference`, which the
tracker writes ("acme/web#12", "WEB-12") and which `/task close` and the task's buttons read
back. Every failure of the tracker reaches the bot as an `IntegrationError` naming `system`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

OPEN = "open"
CLOSED = "closed"
STATES = (OPEN, CLOSED, "all")  # what `list_tasks` may be asked for


@dataclass(frozen=True)
class Task:
    """A task as the bot shows it."""

    project: str  # the tracker's project: "acme/web" on GitLab, "WEB" on Jira
    key: str  # the task's identity within its project: "12" on GitLab, "WEB-12" on Jira
    title: str
    description: str  # without the request's marker
    state: str  # OPEN | CLOSED
    labels: tuple[str, ...]
    assignees: tuple[str, ...]  # usernames
    author: str  # username
    url: str  # the task's page in the tracker
    reference: str  # how people write it: "acme/web#12", "WEB-12"
    # The assignees as people know them, when the usernames are opaque ids (Jira Cloud's
    # accountIds): display names, in the order of `assignees`. Empty: show the usernames.
    assignee_names: tuple[str, ...] = ()

    @property
    def shown_assignees(self) -> tuple[str, ...]:
        """Who the task is assigned to, in the words a message shows."""
        return self.assignee_names or self.assignees


@dataclass(frozen=True)
class Person:
    """An account in the task tracker."""

    id: str  # the tracker's own id for the account
    username: str  # what tasks name as assignee and author, and `assign_task` takes
    name: str


class TaskTracker(Protocol):
    """What the bot needs from a task tracker. `project` is the tracker's project."""

    @property
    def system(self) -> str:
        """The tracker's name as people know it ("GitLab"), for messages and errors."""
        ...

    async def create_task(
        self,
        project: str,
        title: str,
        *,
        marker: str,
        description: str = "",
        labels: Sequence[str] = (),
        assignee: str | None = None,
    ) -> Task:
        """File a task, assigned to a username if given (an unknown one is refused and nothing
        is filed), carrying the request's `marker` so that `find_task` finds it. A failure after
        which the tracker may still file it raises OutcomeUnknown; a retry never files it twice."""
        ...

    async def find_task(self, project: str, marker: str, since: float) -> Task | None:
        """The task filed with `marker` at or after the Unix time `since`, or None."""
        ...

    async def get_task(self, project: str, key: str) -> Task:
        """One task by its key in the project."""
        ...

    async def close_task(self, project: str, key: str) -> Task:
        """Close a task; closing a closed task is not an error."""
        ...

    async def assign_task(self, project: str, key: str, username: str) -> Task:
        """Make `username` the task's only assignee."""
        ...

    async def list_tasks(
        self, project: str, *, state: str = OPEN, assignee: str | None = None, limit: int = 20
    ) -> list[Task]:
        """Newest first, at most `limit`; `state` is one of STATES; `assignee` a username."""
        ...

    async def person_by_email(self, email: str) -> Person | None:
        """The account with this e-mail address, or None when none (or several) match."""
        ...

    async def person_by_username(self, username: str) -> Person | None:
        """The account with this username, or None."""
        ...

    async def version(self) -> str:
        """The tracker's version, proving that it answers and accepts opsloop's credentials."""
        ...
