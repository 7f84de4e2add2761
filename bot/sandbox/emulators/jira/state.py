"""What the Jira emulator holds: users, projects with their workflow and required fields, issues.

Issues are kept as Jira's API shows them (`fields` with `summary`, `labels`, `assignee`, `status`
and its `statusCategory`), the description stored as Atlassian Document Format (Cloud, v3) and
answered as plain text on v2 (Data Center's wiki text, which plain words are).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]


@dataclass(frozen=True)
class JiraUser:
    account_id: str  # Cloud's accountId; Data Center's `name` is the same value here
    display_name: str
    email: str


@dataclass(frozen=True)
class JiraProject:
    key: str
    name: str
    # Custom fields the project's create screen demands, by id ("customfield_10010").
    required: tuple[str, ...] = ()
    # Account ids that may browse and create issues; empty: everybody.
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Status:
    id: str
    name: str
    category: str  # Jira's statusCategory key: "new", "indeterminate", "done"


# One workflow for every project: To Do -> In Progress -> Done, every transition global.
STATUSES = (
    Status("10000", "To Do", "new"),
    Status("3", "In Progress", "indeterminate"),
    Status("10001", "Done", "done"),
)
TRANSITIONS = {"11": STATUSES[0], "21": STATUSES[1], "31": STATUSES[2]}
CATEGORY_NAMES = {"new": "To Do", "indeterminate": "In Progress", "done": "Done"}
CATEGORY_IDS = {"new": 2, "indeterminate": 4, "done": 3}

CUSTOM_FIELDS = {"customfield_10010": "Team", "customfield_10020": "Sprint"}


@dataclass
class IssueRecord:
    id: int
    key: str
    project: str
    summary: str
    description: JSON | None  # ADF document
    labels: list[str]
    assignee: str | None  # accountId
    reporter: str
    status: Status
    created: datetime
    issuetype: str = "Task"
    properties: dict[str, Any] = field(default_factory=dict)


def now() -> datetime:
    return datetime.now(UTC)


def jira_time(moment: datetime) -> str:
    """Jira's own timestamp shape: 2026-12-05T05:14:54.123+0000."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def adf_text(doc: JSON | None) -> str:
    """The plain text of an ADF document: paragraphs joined by blank lines."""
    if not doc:
        return ""
    paragraphs = []
    for block in doc.get("content") or []:
        parts = []
        for inline in block.get("content") or []:
            if inline.get("type") == "text":
                parts.append(str(inline.get("text", "")))
            elif inline.get("type") == "hardBreak":
                parts.append("\n")
        paragraphs.append("".join(parts))
    return "\n\n".join(paragraphs)


def adf_doc(text: str) -> JSON | None:
    if not text:
        return None
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": p}]}
            for p in text.split("\n\n")
            if p
        ],
    }


def valid_adf(doc: Any) -> bool:
    """Jira Cloud refuses a description that is not an ADF document (a plain string, say)."""
    return (
        isinstance(doc, dict)
        and doc.get("type") == "doc"
        and doc.get("version") == 1
        and isinstance(doc.get("content"), list)
    )


def user_json(base: str, user: JiraUser, version: str) -> JSON:
    shape: JSON = {
        "self": f"{base}/rest/api/{version}/user?accountId={user.account_id}",
        "accountId": user.account_id,
        "accountType": "atlassian",
        "displayName": user.display_name,
        "emailAddress": user.email,
        "active": True,
    }
    if version == "2":  # Data Center names people by username
        shape["name"] = user.account_id
        shape["key"] = user.account_id
    return shape


def status_json(status: Status) -> JSON:
    return {
        "id": status.id,
        "name": status.name,
        "statusCategory": {
            "id": CATEGORY_IDS[status.category],
            "key": status.category,
            "name": CATEGORY_NAMES[status.category],
        },
    }


def issue_json(base: str, issue: IssueRecord, users: dict[str, JiraUser], version: str) -> JSON:
    assignee = users.get(issue.assignee or "")
    reporter = users.get(issue.reporter)
    description: Any = issue.description if version == "3" else adf_text(issue.description) or None
    return {
        "id": str(issue.id),
        "key": issue.key,
        "self": f"{base}/rest/api/{version}/issue/{issue.id}",
        "fields": {
            "project": {"key": issue.project, "id": str(10000 + ord(issue.project[0]))},
            "summary": issue.summary,
            "description": description,
            "labels": list(issue.labels),
            "assignee": user_json(base, assignee, version) if assignee else None,
            "reporter": user_json(base, reporter, version) if reporter else None,
            "creator": user_json(base, reporter, version) if reporter else None,
            "status": status_json(issue.status),
            "issuetype": {"name": issue.issuetype},
            "created": jira_time(issue.created),
            "updated": jira_time(issue.created),
        },
    }
