"""The task tracker (bot/tasks/ports.py) on Jira: a task is an issue, its key Jira's own
("WEB-12"), which is also its reference.

People: a task's assignee and author are accounts named by what Jira's API takes to assign:
the accountId on Cloud (Cloud has no usernames), the username (`name`) on Data Center.

Exactly once: filing an issue is not idempotent, so each issue carries the request's marker as
a label, `opsloop-request-<marker>`: labels are searchable by JQL (`labels = "..."`), so a
create that got no answer is looked for before it is ever sent again, while an issue property
or a line in the description could not be searched. The label is hidden from the task opsloop
shows; in Jira it tells people the issue came from Slack.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.tasks.ports import CLOSED, OPEN, STATES, Person, Task
from integrations.jira import errors
from integrations.jira.adf import from_adf, to_adf
from integrations.jira.client import JiraClient

MARKER_LABEL = "opsloop-request-"
ISSUE_TYPE = "Task"
_FIELDS = "summary,description,labels,assignee,reporter,status,project,created"
_JQL_STATE = {OPEN: " AND statusCategory != Done", CLOSED: " AND statusCategory = Done", "all": ""}


class JiraTaskTracker(JiraClient):
    """`TaskTracker` over Jira's issues, transitions and users."""

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
        """File an issue labelled with the request's marker (`POST /issue`), then read it."""
        if assignee is not None and await self.person_by_username(assignee) is None:
            raise errors.failure(f"no Jira account is named {assignee}; nothing was filed")
        fields: dict[str, Any] = {
            "project": {"key": project},
            "summary": title,
            "issuetype": {"name": ISSUE_TYPE},
            "labels": [*labels, MARKER_LABEL + marker],
        }
        text = description.strip()
        if text:
            fields["description"] = to_adf(text) if self.cloud else text
        if assignee is not None:
            fields["assignee"] = self._account(assignee)
        made = await self.call(
            "POST", "/issue", f"filing an issue in {project}", json={"fields": fields}, creates=True
        )
        return await self.get_task(project, str((made or {}).get("key") or ""))

    async def find_task(self, project: str, marker: str, since: float) -> Task | None:
        """The issue labelled with `marker`, filed at or after `since` (to the second)."""
        jql = f"project = {_quoted(project)} AND labels = {_quoted(MARKER_LABEL + marker)}"
        for task, created in await self._search(jql + " ORDER BY created DESC", 5, project):
            if created >= int(since):
                return task
        return None

    async def get_task(self, project: str, key: str) -> Task:
        """The issue `key`, which must belong to `project`."""
        if not key.upper().startswith(project.upper() + "-"):
            raise errors.failure(f"issue {key} is not in project {project}")
        issue = await self.call(
            "GET", f"/issue/{key}", f"reading issue {key}", params={"fields": _FIELDS}
        )
        return self._task(issue)

    async def close_task(self, project: str, key: str) -> Task:
        """Move the issue along the transition whose target's status category is done."""
        task = await self.get_task(project, key)
        if task.state == CLOSED:
            return task
        listed = await self.call("GET", f"/issue/{key}/transitions", f"reading {key}'s transitions")
        done = [
            t
            for t in (listed or {}).get("transitions") or []
            if ((t.get("to") or {}).get("statusCategory") or {}).get("key") == "done"
        ]
        if not done:
            raise errors.failure(
                f"{key} has no transition to a Done status from where it is; opsloop's Jira "
                "account needs Transition issues, and the workflow a way to Done from there"
            )
        await self.call(
            "POST",
            f"/issue/{key}/transitions",
            f"closing {key}",
            json={"transition": {"id": str(done[0]["id"])}},
        )
        return await self.get_task(project, key)

    async def assign_task(self, project: str, key: str, username: str) -> Task:
        """`PUT /issue/{key}/assignee` with the account."""
        await self.get_task(project, key)
        if await self.person_by_username(username) is None:
            raise errors.failure(f"no Jira account is named {username}")
        await self.call(
            "PUT", f"/issue/{key}/assignee", f"assigning {key}", json=self._account(username)
        )
        return await self.get_task(project, key)

    async def list_tasks(
        self, project: str, *, state: str = OPEN, assignee: str | None = None, limit: int = 20
    ) -> list[Task]:
        """JQL: the project's issues in `state`, newest first."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        jql = f"project = {_quoted(project)}{_JQL_STATE[state]}"
        if assignee is not None:
            jql += f" AND assignee = {_quoted(assignee)}"
        found = await self._search(jql + " ORDER BY created DESC", limit, project)
        return [task for task, _ in found]

    async def person_by_email(self, email: str) -> Person | None:
        """The one active account whose e-mail is `email` (Jira's user search), or None."""
        key = "query" if self.cloud else "username"
        users = await self.call(
            "GET", "/user/search", "looking up a Jira user", params={key: email}
        )
        same = [
            u
            for u in users or []
            if str(u.get("emailAddress") or "").lower() == email.lower() and u.get("active", True)
        ]
        return self._person(same[0]) if len(same) == 1 else None

    async def person_by_username(self, username: str) -> Person | None:
        """The account with this accountId (Cloud) or username (Data Center), or None."""
        key = "accountId" if self.cloud else "username"
        users = await self.call(
            "GET", "/user/search", "looking up a Jira user", params={key: username}
        )
        for user in users or []:
            person = self._person(user)
            if person.username == username:
                return person
        return None

    async def version(self) -> str:
        """Jira's deployment and version (`GET /serverInfo`), after `GET /myself` proves the
        credentials."""
        await self.call("GET", "/myself", "checking opsloop's Jira account")
        info = await self.call("GET", "/serverInfo", "reading Jira's version") or {}
        return f"{info.get('deploymentType') or 'Jira'} {info.get('version') or ''}".strip()

    # -- shapes ---------------------------------------------------------------------------

    async def _search(self, jql: str, limit: int, project: str) -> list[tuple[Task, int]]:
        path = "/search/jql" if self.cloud else "/search"
        params = {"jql": jql, "maxResults": str(max(1, min(limit, 100))), "fields": _FIELDS}
        found = await self.call("GET", path, f"searching issues in {project}", params=params)
        issues = (found or {}).get("issues") or []
        return [(self._task(i), _created(i)) for i in issues]

    def _account(self, username: str) -> dict[str, str]:
        return {"accountId": username} if self.cloud else {"name": username}

    def _username(self, user: Any) -> str:
        if not isinstance(user, dict):
            return ""
        return str(user.get("accountId") if self.cloud else user.get("name") or "")

    def _person(self, user: dict[str, Any]) -> Person:
        username = self._username(user)
        return Person(
            id=str(user.get("accountId") or username),
            username=username,
            name=str(user.get("displayName") or username),
        )

    def _task(self, issue: Any) -> Task:
        if not isinstance(issue, dict) or not isinstance(issue.get("fields"), dict):
            raise errors.failure(
                f"Jira answered with something that is not an issue: {json.dumps(issue)[:80]}"
            )
        fields = issue["fields"]
        key = str(issue.get("key") or "")
        category = ((fields.get("status") or {}).get("statusCategory") or {}).get("key")
        assignee = self._username(fields.get("assignee"))
        shown = str((fields.get("assignee") or {}).get("displayName") or assignee)
        return Task(
            project=str((fields.get("project") or {}).get("key") or key.rsplit("-", 1)[0]),
            key=key,
            title=str(fields.get("summary") or ""),
            description=from_adf(fields.get("description")),
            state=CLOSED if category == "done" else OPEN,
            labels=tuple(
                str(x) for x in fields.get("labels") or [] if not str(x).startswith(MARKER_LABEL)
            ),
            assignees=(assignee,) if assignee else (),
            author=self._username(fields.get("reporter")),
            url=f"{self.base}/browse/{key}",
            reference=key,
            assignee_names=(shown,) if assignee else (),
        )


def _quoted(value: str) -> str:
    """A JQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _created(issue: dict[str, Any]) -> int:
    """When Jira says the issue was filed, in whole Unix seconds (0 when unreadable)."""
    raw = str((issue.get("fields") or {}).get("created") or "")
    try:
        return int(datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp())
    except ValueError:
        return 0
