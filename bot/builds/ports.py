"""What the build capability needs from a CI system (GitLab pipelines today, Jenkins tomorrow), in
its own words: a run of a project's CI on a ref, the jobs of a run, and its test summary.

Statuses are the bot's words, which bot/builds/progress.py ranks and bot/builds/messages.py
shows: created, waiting_for_resource, preparing, pending, scheduled, manual, running,
waiting_for_callback, canceling, and the final success, failed, canceled, skipped (GitLab's own
set, so its adapter passes them on; another system maps its own onto them). An unknown status
is taken as "in progress". Every failure of the system reaches the bot as an `IntegrationError`
naming `system`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol


@dataclass(frozen=True)
class Run:
    """One run of a project's CI on a branch or tag, as the bot follows it."""

    project: str  # the CI system's project, as the caller named it
    id: int  # unique within the project; the buttons and the store key runs by it
    ref: str
    sha: str
    status: str  # see the module's docstring
    url: str  # the run's page in the CI system
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None  # seconds, once finished


@dataclass(frozen=True)
class RunJob:
    """One job of a run (a job that was retried is left out: its retry replaces it)."""

    id: int  # a retry gets a new, higher id
    name: str
    stage: str
    status: str
    url: str
    duration: float | None
    failure_reason: str | None  # "script_failure", ... when failed
    allow_failure: bool


@dataclass(frozen=True)
class TestSummary:
    """A run's test report summary: counts of test cases, and the suites with failures."""

    __test__: ClassVar[bool] = False  # not a pytest test class, whatever its name

    total: int
    success: int
    failed: int
    skipped: int
    error: int
    suites_failed: tuple[str, ...]


class CISystem(Protocol):
    """What the bot needs from a CI system. `project` is the CI system's project."""

    @property
    def system(self) -> str:
        """The CI system's name as people know it ("GitLab"), for messages and errors."""
        ...

    async def ref_exists(self, project: str, ref: str) -> str | None:
        """The kind of ref `ref` names: "branch" or "tag" (branches first), else None."""
        ...

    async def default_branch(self, project: str) -> str:
        """The project's default branch."""
        ...

    async def start_run(
        self, project: str, ref: str, variables: Mapping[str, str], *, marker: str
    ) -> Run:
        """Start a run on a branch or tag with these variables, carrying the request's `marker`
        so that `find_run` finds it. A failure after which the system may still start it raises
        OutcomeUnknown; a retry never starts it twice."""
        ...

    async def find_run(self, project: str, ref: str, marker: str, since: float) -> Run | None:
        """The run started on `ref` with `marker` at or after the Unix time `since`, or None."""
        ...

    async def get_run(self, project: str, run_id: int) -> Run:
        """One run by its id."""
        ...

    async def latest_run(self, project: str, ref: str | None = None) -> Run | None:
        """The newest run (on `ref` if given), or None when there is none."""
        ...

    async def run_jobs(self, project: str, run_id: int) -> list[RunJob]:
        """The run's current jobs, oldest first."""
        ...

    async def cancel_run(self, project: str, run_id: int) -> Run:
        """Cancel what has not finished; cancelling a finished run is not an error."""
        ...

    async def retry_run(self, project: str, run_id: int) -> Run:
        """Run the failed and canceled jobs again (they get new job ids)."""
        ...

    async def test_summary(self, project: str, run_id: int) -> TestSummary | None:
        """The run's test report summary, or None when it reported no tests."""
        ...
