"""GitLab's JSON shapes (API v4) for the emulator's records, so clients read them as real ones."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from .models import DEVELOPER, JSON, EmulatedProject, EmulatedUser, IssueRecord

UserLookup = Callable[[int], EmulatedUser | None]


def iso(moment: datetime | None) -> str | None:
    """GitLab's timestamp form: UTC, milliseconds, `Z`."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def user(u: EmulatedUser, base: str) -> JSON:
    """The basic user object: list entries, authors, assignees."""
    digest = hashlib.sha256((u.email or u.username).lower().encode()).hexdigest()
    return {
        "id": u.id,
        "username": u.username,
        "name": u.display_name,
        "state": u.state,
        "locked": False,
        "avatar_url": f"https://www.gravatar.com/avatar/{digest}?s=80&d=identicon",
        "web_url": f"{base}/{u.username}",
    }


def user_detail(u: EmulatedUser, base: str) -> JSON:
    """`GET /users/:id`: the basic object and the public profile."""
    return user(u, base) | {
        "bot": u.bot,
        "public_email": u.public_email or None,
        "bio": "",
        "location": "",
        "created_at": "2024-01-01T00:00:00.000Z",
    }


def current_user(u: EmulatedUser, base: str) -> JSON:
    """`GET /user`: the token's own account, with its private e-mail."""
    return user_detail(u, base) | {"email": u.email, "is_admin": False, "two_factor_enabled": False}


def member(u: EmulatedUser, base: str, access_level: int = DEVELOPER) -> JSON:
    return user(u, base) | {
        "access_level": access_level,
        "created_at": "2024-01-01T00:00:00.000Z",
        "expires_at": None,
        "membership_state": "active",
    }


def project(p: EmulatedProject, base: str) -> JSON:
    web_url = f"{base}/{p.path_with_namespace}"
    host = base.split("://", 1)[-1]
    namespace = p.namespace
    return {
        "id": p.id,
        "description": p.description,
        "name": p.path,
        "name_with_namespace": f"{namespace} / {p.path}" if namespace else p.path,
        "path": p.path,
        "path_with_namespace": p.path_with_namespace,
        "created_at": "2024-01-01T00:00:00.000Z",
        "default_branch": p.default_branch,
        "visibility": p.visibility,
        "web_url": web_url,
        "http_url_to_repo": f"{web_url}.git",
        "ssh_url_to_repo": f"git@{host}:{p.path_with_namespace}.git",
        "namespace": {
            "id": 1000 + p.id,
            "name": namespace,
            "path": namespace.rpartition("/")[2],
            "kind": "group",
            "full_path": namespace,
            "web_url": f"{base}/groups/{namespace}",
        },
        "archived": False,
        "issues_enabled": True,
        "last_activity_at": "2024-01-01T00:00:00.000Z",
        "_links": {
            "self": f"{base}/api/v4/projects/{p.id}",
            "issues": f"{base}/api/v4/projects/{p.id}/issues",
            "members": f"{base}/api/v4/projects/{p.id}/members",
        },
    }


def issue(i: IssueRecord, p: EmulatedProject, users: UserLookup, base: str) -> JSON:
    def person(user_id: int | None) -> JSON | None:
        found = users(user_id) if user_id is not None else None
        return user(found, base) if found is not None else None

    assignees = [a for a in (person(uid) for uid in i.assignee_ids) if a is not None]
    api = f"{base}/api/v4/projects/{p.id}"
    return {
        "id": i.id,
        "iid": i.iid,
        "project_id": p.id,
        "title": i.title,
        "description": i.description,
        "state": i.state,
        "created_at": iso(i.created_at),
        "updated_at": iso(i.updated_at),
        "closed_at": iso(i.closed_at),
        "closed_by": person(i.closed_by_id),
        "labels": list(i.labels),
        "milestone": None,
        "assignees": assignees,
        "assignee": assignees[0] if assignees else None,
        "author": person(i.author_id),
        "type": "ISSUE",
        "issue_type": "issue",
        "user_notes_count": 0,
        "merge_requests_count": 0,
        "upvotes": 0,
        "downvotes": 0,
        "due_date": None,
        "confidential": False,
        "discussion_locked": None,
        "web_url": f"{base}/{p.path_with_namespace}/-/issues/{i.iid}",
        "references": {
            "short": f"#{i.iid}",
            "relative": f"#{i.iid}",
            "full": f"{p.path_with_namespace}#{i.iid}",
        },
        "time_stats": {
            "time_estimate": 0,
            "total_time_spent": 0,
            "human_time_estimate": None,
            "human_total_time_spent": None,
        },
        "task_completion_status": {"count": 0, "completed_count": 0},
        "has_tasks": False,
        "severity": "UNKNOWN",
        "_links": {
            "self": f"{api}/issues/{i.iid}",
            "notes": f"{api}/issues/{i.iid}/notes",
            "award_emoji": f"{api}/issues/{i.iid}/award_emoji",
            "project": api,
        },
    }
