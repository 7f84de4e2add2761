"""What the emulated GitLab holds: users, projects, issues, and the requests it was sent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JSON = dict[str, Any]

# GitLab's access levels (`access_level` in member objects).
GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 20, 30, 40, 50


@dataclass(frozen=True)
class EmulatedUser:
    """A GitLab account. `email` is private: found by an exact search, never listed."""

    id: int
    username: str
    name: str = ""
    email: str = ""
    public_email: str = ""
    bot: bool = False
    state: str = "active"

    @property
    def display_name(self) -> str:
        return self.name or self.username


@dataclass(frozen=True)
class EmulatedProject:
    """A GitLab project; `members` are usernames with Developer access."""

    id: int
    path_with_namespace: str
    default_branch: str = "main"
    members: Sequence[str] = ()
    description: str = ""
    visibility: str = "private"

    @property
    def namespace(self) -> str:
        return self.path_with_namespace.rpartition("/")[0]

    @property
    def path(self) -> str:
        return self.path_with_namespace.rpartition("/")[2]


@dataclass
class IssueRecord:
    """One issue as the emulator keeps it; `shapes.issue` renders GitLab's JSON."""

    id: int
    iid: int
    project_id: int
    title: str
    description: str
    author_id: int
    created_at: datetime
    updated_at: datetime
    labels: list[str] = field(default_factory=list)
    assignee_ids: list[int] = field(default_factory=list)
    state: str = "opened"  # "opened" | "closed"
    closed_at: datetime | None = None
    closed_by_id: int | None = None


@dataclass
class RecordedRequest:
    """One request the emulator received; `status` is None until it has been answered."""

    method: str
    path: str  # as sent, with a project path still URL-encoded: /api/v4/projects/acme%2Fweb
    query: dict[str, str]
    body: JSON | None  # a JSON object or form fields; None without a body
    at: float  # time.time() on arrival
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # without the credentials
