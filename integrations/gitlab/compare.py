"""The commits a deployed change brought (bot/feedback/ports.py `Changes`), from GitLab's
`GET /projects/:id/repository/compare?from=&to=`, through python-gitlab."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import gitlab.exceptions

from bot.feedback.ports import Commit, RefMissing
from integrations.gitlab.client import Call, GitLabCalls
from integrations.gitlab.errors import Target, Unreadable, reason


class _Missing(Exception):
    """GitLab's `404 Ref Not Found`: one of the two versions is no tag or branch."""


class GitLabChanges(GitLabCalls):
    async def commits_between(self, project: str, from_ref: str, to_ref: str) -> list[Commit]:
        """`Changes` over GitLab's compare: the commits from `from_ref` to `to_ref`."""

        def compare(c: Call) -> list[Commit] | None:
            lazy = c.gl.projects.get(project, lazy=True)
            try:
                data = lazy.repository_compare(from_ref, to_ref, **c.opts())
            except gitlab.exceptions.GitlabGetError as e:
                if e.response_code == 404 and "ref" in reason(e.error_message).lower():
                    return None
                raise
            if not isinstance(data, dict) or not isinstance(data.get("commits"), list):
                raise Unreadable("no commits")
            return sorted((_commit(c) for c in data["commits"]), key=lambda c: c.committed_at)

        found = await self._call(compare, Target(project, thing=f"{from_ref}...{to_ref}"))
        if found is None:
            raise RefMissing(f"{from_ref} or {to_ref}")
        return found


def _commit(data: Any) -> Commit:
    if not isinstance(data, dict):
        raise Unreadable("a commit")
    when = data.get("committed_date") or data.get("created_at")
    try:
        committed = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
    except ValueError as e:
        raise Unreadable("a commit's date") from e
    return Commit(
        sha=str(data.get("id", "")), title=str(data.get("title", "")), committed_at=committed
    )
