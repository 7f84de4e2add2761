"""What the delivery figures need from the system that holds the code (GitLab today): the
commits a deployed change brought, between the version that ran before and the new one.

The CI system offers it when it can (`isinstance(deps.ci, Changes)`), so no new setting and no
new plugin capability: where the CI system is not a code host, lead times are "not measured".
A version is a tag; a missing tag is a `RefMissing`, any other failure an `IntegrationError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Commit:
    """One commit of a deployed change."""

    sha: str
    title: str
    committed_at: datetime  # when it was committed (GitLab's committed_date)


class RefMissing(Exception):
    """A version the code host has no tag (or branch) of."""

    def __init__(self, ref: str) -> None:
        super().__init__(ref)
        self.ref = ref


@runtime_checkable
class Changes(Protocol):
    """The commits between two versions of a project's code."""

    async def commits_between(self, project: str, from_ref: str, to_ref: str) -> list[Commit]:
        """The commits reachable from `to_ref` and not from `from_ref` (GitLab's compare,
        `straight=false`), oldest first; raises RefMissing when a ref is unknown."""
        ...
