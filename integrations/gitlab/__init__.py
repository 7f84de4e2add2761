"""GitLab: the task tracker (issues, users) and the CI system (pipelines, jobs, refs) of
bot/tasks/ports.py and bot/builds/ports.py, and the pipeline and job calls the GitLab deployer
makes, all over GitLab's REST API v4 through python-gitlab.

    client.py     python-gitlab in worker threads, the call budget, attempts, look-don't-resend
    errors.py     the one place GitLab's failures become IntegrationError / OutcomeUnknown
    shapes.py     GitLab's JSON as frozen types (Issue, GitLabUser, Pipeline, PipelineJob)
    issues.py     issues and users, in GitLab's words       tasks.py  the TaskTracker on them
    pipelines.py  refs and pipelines, in GitLab's words     ci.py     the CISystem on them
    jobs.py       the deployer's manual jobs (DeploysPort)

The calls are made once, in GitLab's words (issues.py, pipelines.py: an issue's iid, a
pipeline's source); tasks.py and ci.py only translate them into the ports' words, so a Jira or
Jenkins adapter implements the same ports without anything GitLab-shaped. `GitLabClient` is the
one object the bot makes for a GitLab: it serves all three.
"""

from __future__ import annotations

from typing import Protocol

from bot.builds.ports import CISystem
from bot.tasks.ports import TaskTracker
from integrations.gitlab.ci import GitLabCI
from integrations.gitlab.client import CALL_BUDGET, CALL_LIMIT
from integrations.gitlab.errors import SYSTEM, TOKEN_REJECTED, UNANSWERED, UNAVAILABLE
from integrations.gitlab.jobs import DeploysPort, GitLabJobs
from integrations.gitlab.pipelines import REQUEST_VARIABLE
from integrations.gitlab.shapes import GitLabUser, Issue, Pipeline, PipelineJob
from integrations.gitlab.tasks import GitLabTaskTracker


class GitLabPort(TaskTracker, CISystem, DeploysPort, Protocol):
    """Everything the bot asks of GitLab."""


class GitLabClient(GitLabTaskTracker, GitLabCI, GitLabJobs):
    """`TaskTracker`, `CISystem` and `DeploysPort` over one GitLab's REST API v4, through
    python-gitlab; `close()` releases its connections."""


__all__ = [
    "CALL_BUDGET",
    "CALL_LIMIT",
    "REQUEST_VARIABLE",
    "SYSTEM",
    "TOKEN_REJECTED",
    "UNANSWERED",
    "UNAVAILABLE",
    "DeploysPort",
    "GitLabClient",
    "GitLabPort",
    "GitLabUser",
    "Issue",
    "Pipeline",
    "PipelineJob",
]
