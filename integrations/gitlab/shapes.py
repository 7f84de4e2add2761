"""GitLab's JSON as frozen types: issues, users, pipelines and jobs in GitLab's own words (what
GitLabClient's GitLab-level calls return), and the test report summary as the bot's own.

Anything that does not have the shape GitLab's API describes raises `Unreadable`, which
errors.py turns into one message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.builds.ports import TestSummary
from integrations.gitlab.errors import Unreadable

# The marker a created issue's description ends with: an HTML comment, so GitLab does not show
# it, holding one word, so GitLab's search (word or substring) finds it.
ISSUE_MARKER = "<!-- opsloop request {} -->"
_ISSUE_MARKER_AT_END = re.compile(r"\s*<!-- opsloop request \w+ -->\s*$")


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


def user_from(data: dict[str, Any]) -> GitLabUser:
    try:
        return GitLabUser(
            id=int(data["id"]), username=str(data["username"]), name=str(data["name"])
        )
    except (KeyError, TypeError, ValueError) as e:
        raise Unreadable("not a user") from e


def issue_from(data: dict[str, Any], project: str) -> Issue:
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
        raise Unreadable("not an issue") from e


def pipeline_from(data: dict[str, Any], project: str) -> Pipeline:
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
        raise Unreadable("not a pipeline") from e


def job_from(data: dict[str, Any]) -> PipelineJob:
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
        raise Unreadable("not a job") from e


def summary_from(data: object) -> TestSummary | None:
    """`.../test_report_summary`; None when no job reported tests."""
    if not isinstance(data, dict):
        raise Unreadable("not a test report summary")
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
        raise Unreadable("not a test report summary") from e


def variables_from(found: list[Any]) -> dict[str, str]:
    """`[{key, value, variable_type}]` as {key: value}."""
    pairs = {}
    for item in found:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            pairs[item["key"]] = str(item.get("value") if item.get("value") is not None else "")
    return pairs


def dicts(found: object) -> list[dict[str, Any]]:
    if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
        raise Unreadable("not a list of objects")
    return found


def _username(person: object) -> str | None:
    username = person.get("username") if isinstance(person, dict) else None
    return username if isinstance(username, str) else None


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
