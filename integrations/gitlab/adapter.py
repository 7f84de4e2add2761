"""`GitLabClient`, the one object the bot makes for a GitLab: the task tracker, the CI system
and the deployer's job calls over one python-gitlab connection."""

from __future__ import annotations

from typing import Protocol

from bot.builds.ports import CISystem
from bot.tasks.ports import TaskTracker
from integrations.gitlab.ci import GitLabCI
from integrations.gitlab.compare import GitLabChanges
from integrations.gitlab.jobs import DeploysPort, GitLabJobs
from integrations.gitlab.tasks import GitLabTaskTracker


class GitLabPort(TaskTracker, CISystem, DeploysPort, Protocol):
    """Everything the bot asks of GitLab."""


class GitLabClient(GitLabTaskTracker, GitLabCI, GitLabJobs, GitLabChanges):
    """`TaskTracker`, `CISystem`, `DeploysPort` and `Changes` over one GitLab's REST API v4, through
    python-gitlab; `close()` releases its connections."""
