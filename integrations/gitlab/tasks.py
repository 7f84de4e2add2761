"""The task tracker (bot/tasks/ports.py) on GitLab issues: a task is an issue, its key the
issue's number in its project (its iid, "12"), its reference GitLab's own ("acme/web#12")."""

from __future__ import annotations

from collections.abc import Sequence

from bot.tasks.ports import CLOSED, OPEN, STATES, Person, Task
from integrations.gitlab.errors import failure
from integrations.gitlab.issues import GitLabIssues
from integrations.gitlab.shapes import GitLabUser, Issue

# The task tracker's states, as GitLab's issue list filters them.
_GITLAB_STATE = {OPEN: "opened", CLOSED: "closed", "all": "all"}


class GitLabTaskTracker(GitLabIssues):
    """`TaskTracker` over GitLab's issues and users."""

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
        """File an issue ending with the request's marker; never twice."""
        issue = await self.create_issue(
            project,
            title,
            marker=marker,
            description=description,
            labels=labels,
            assignee=assignee,
        )
        return task_from(issue)

    async def find_task(self, project: str, marker: str, since: float) -> Task | None:
        """The issue whose description ends with `marker`, filed since `since`, or None."""
        issue = await self.find_issue(project, marker, since)
        return task_from(issue) if issue is not None else None

    async def get_task(self, project: str, key: str) -> Task:
        """The issue numbered `key` in the project."""
        return task_from(await self.get_issue(project, _iid(project, key)))

    async def close_task(self, project: str, key: str) -> Task:
        """Close the issue; a closed one stays as it is."""
        return task_from(await self.close_issue(project, _iid(project, key)))

    async def assign_task(self, project: str, key: str, username: str) -> Task:
        """Make `username` the issue's only assignee."""
        return task_from(await self.assign_issue(project, _iid(project, key), username))

    async def list_tasks(
        self, project: str, *, state: str = OPEN, assignee: str | None = None, limit: int = 20
    ) -> list[Task]:
        """The project's issues, newest first."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        issues = await self.list_issues(
            project, state=_GITLAB_STATE[state], assignee=assignee, limit=limit
        )
        return [task_from(issue) for issue in issues]

    async def person_by_email(self, email: str) -> Person | None:
        """The GitLab account GitLab's user search finds for this address, or None."""
        user = await self.user_by_email(email)
        return person_from(user) if user is not None else None

    async def person_by_username(self, username: str) -> Person | None:
        """The GitLab account with this username, or None."""
        user = await self.user_by_username(username)
        return person_from(user) if user is not None else None


def task_from(issue: Issue) -> Task:
    return Task(
        project=issue.project,
        key=str(issue.iid),
        title=issue.title,
        description=issue.description,
        state=CLOSED if issue.state == "closed" else OPEN,
        labels=issue.labels,
        assignees=issue.assignees,
        author=issue.author,
        url=issue.web_url,
        reference=issue.reference,
    )


def person_from(user: GitLabUser) -> Person:
    return Person(id=str(user.id), username=user.username, name=user.name)


def _iid(project: str, key: str) -> int:
    """A task's key as GitLab's issue number; any other key names no issue of GitLab's."""
    if not (key.isascii() and key.isdecimal()):
        raise failure(f"issue {project}#{key} was not found")
    return int(key)
