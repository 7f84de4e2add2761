"""A service deployed by its own GitLab pipeline: each canary step plays a manual job.

The rollout gets one pipeline (on the service's `ref`, with `VERSION=<version>`), made before
its first step; step N plays the job named by `services.<name>.steps[N].job` and waits for it to
succeed, and a rollback plays `rollback_job`. What actually changes traffic is the project's
CI; the bot only says when. GitLab cannot tell which version runs, so `running_versions` is
None and the approval message shows the pipeline's jobs instead.

Every call is safe to repeat, as the deployer port (bot/deploys/ports.py) asks: a job that is
already under way is waited for and a finished one is not played again (GitLabJobs.play_job
never plays a job that has left `manual`, and this module only plays a job it has just read as
`manual`). A failed job is run again only when a person asks (`/deploy promote`, `retry`), and
only once: the retry is a newer job of the same name, which is the one waited for from then on.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot.deploys.ports import (
    IMAGE_TAG,
    Deployer,
    DeployerFactory,
    RolloutView,
    ServiceSettings,
    Snapshot,
    Unit,
)
from bot.errors import IntegrationError
from bot.once import marker
from integrations.gitlab.config import GitLabService
from integrations.gitlab.errors import SYSTEM
from integrations.gitlab.jobs import DeploysPort
from integrations.gitlab.shapes import PipelineJob

# A job in one of these has stopped for good without succeeding; GitLab can run the first two
# again (a skipped job runs once the earlier stage it waited for succeeds).
_FAILED = frozenset({"failed", "canceled", "skipped"})
_RETRYABLE = frozenset({"failed", "canceled"})
_MAX_NAMES = 20  # job names listed when the wanted one is missing


class GitLabDeployer:
    """A service whose canary steps are manual jobs of a GitLab pipeline."""

    kind = "gitlab"

    def __init__(
        self,
        name: str,
        service: ServiceSettings,
        gitlab: DeploysPort,
        step_timeout: float,
        poll_seconds: float = 2.0,
    ) -> None:
        if not isinstance(service, GitLabService) or service.project is None:
            raise ValueError("a gitlab service needs a project")
        if step_timeout <= 0 or poll_seconds <= 0:
            raise ValueError("step_timeout and poll_seconds must be positive")
        self.name = name
        self.service = service
        self.gitlab = gitlab
        self.project = service.project
        self.step_timeout = step_timeout
        self.poll_seconds = poll_seconds

    @staticmethod
    def validate_version(version: str) -> None:
        """A version is what the pipeline gets as VERSION: as a rule, the tag of the image the
        project's pipeline deploys."""
        IMAGE_TAG.check(version)

    async def running_versions(self) -> dict[str, int] | None:
        return None  # a pipeline says what it did, not what runs now

    def planned(self, rollout: RolloutView, step: int) -> dict[str, int] | None:
        return None

    async def prepare(self, rollout: RolloutView) -> dict[str, Any]:
        """The rollout's pipeline, once: on the service's ref (else the default branch).

        In two calls, so that the intent is stored before GitLab is asked: the first records
        when the pipeline was asked for; the second finds the pipeline that carries the
        rollout's marker (made by a call a crash cut short), or makes it."""
        if rollout.pipeline_id is not None:
            return {}
        if rollout.pipeline_asked_at is None:
            return {"pipeline_asked_at": time.time()}
        ref = self.service.ref or await self.gitlab.default_branch(self.project)
        request = marker(f"deploy:{rollout.id}:{rollout.version}")
        pipeline = await self.gitlab.find_pipeline(
            self.project, ref, request, rollout.pipeline_asked_at
        ) or await self.gitlab.create_pipeline(
            self.project, ref, {"VERSION": rollout.version}, marker=request
        )
        return {"pipeline_id": pipeline.id, "pipeline_url": pipeline.web_url}

    async def apply(self, rollout: RolloutView, step: int) -> None:
        """Play the step's job and wait until it has succeeded; a step without a job (only a
        percentage to show) has nothing to do."""
        job = self.service.steps[step].job
        if job is None:
            return
        await self._run(rollout, job, f"services.{self.name}.steps")

    async def revert(self, rollout: RolloutView) -> None:
        """Play `rollback_job` and wait for it; without one, or before any pipeline was made
        (nothing was deployed yet), there is nothing GitLab can do."""
        job = self.service.rollback_job
        if job is None or rollout.pipeline_id is None:
            return
        await self._run(rollout, job, f"services.{self.name}.rollback_job")

    async def retry(self, rollout: RolloutView) -> None:
        """Run the failed change's job again in GitLab (a new job of the same name), so that
        `apply` or `revert` waits for the new one instead of finding the failure again."""
        if rollout.ended_by is not None:  # a failed rollback is tried again as a rollback
            name, setting = self.service.rollback_job, f"services.{self.name}.rollback_job"
        elif rollout.target < len(self.service.steps):
            name, setting = self.service.steps[rollout.target].job, f"services.{self.name}.steps"
        else:
            return  # the service's steps changed since; apply says what is wrong
        if name is None or rollout.pipeline_id is None:
            return  # nothing GitLab ran; apply or revert starts afresh
        newest = await self._find(rollout, name, setting)
        if newest.status in _RETRYABLE:
            await self.gitlab.retry_job(self.project, newest.id)

    async def snapshot(self, rollout: RolloutView | None) -> Snapshot:
        """The jobs of the rollout's pipeline, oldest first, linked to the pipeline."""
        if rollout is None or rollout.pipeline_id is None:
            return Snapshot()
        jobs = await self.gitlab.pipeline_jobs(self.project, rollout.pipeline_id)
        units = tuple(
            Unit(
                name=j.name,
                version=rollout.version,
                status=j.status,
                ok=j.status == "success",
                url=j.web_url,
            )
            for j in jobs
        )
        return Snapshot(units=units, link=rollout.pipeline_url)

    # -- plumbing -------------------------------------------------------------------------

    async def _run(self, rollout: RolloutView, name: str, setting: str) -> None:
        """Play the job `name` of the rollout's pipeline when it waits for a person, and poll
        it until it succeeds (return), fails (IntegrationError) or step_timeout passes."""
        deadline = time.monotonic() + self.step_timeout
        job = await self._find(rollout, name, setting)
        played = False
        while True:
            if job.status == "success":
                return
            if job.status in _FAILED:
                reason = job.failure_reason or job.status
                raise IntegrationError(
                    SYSTEM, f"job {name} (#{job.id}) failed: {reason}; see {job.web_url}"
                )
            if job.status == "manual" and not played:
                # A later stage's manual job turns from `created` to `manual` once the earlier
                # stages are done; it is played only now, when it waits for a person.
                job = await self.gitlab.play_job(self.project, job.id)
                played = True
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise IntegrationError(SYSTEM, self._too_slow(job))
            await asyncio.sleep(min(self.poll_seconds, left))
            job = await self.gitlab.get_job(self.project, job.id)

    async def _find(self, rollout: RolloutView, name: str, setting: str) -> PipelineJob:
        """The newest job called `name` in the rollout's pipeline (a retry adds a newer one)."""
        pipeline_id = rollout.pipeline_id
        if pipeline_id is None:
            raise IntegrationError(
                SYSTEM, f"{rollout.id} has no GitLab pipeline yet, so job {name} cannot run"
            )
        jobs = await self.gitlab.pipeline_jobs(self.project, pipeline_id)
        named = [j for j in jobs if j.name == name]
        if named:
            return max(named, key=lambda j: j.id)
        names = list(dict.fromkeys(j.name for j in jobs))
        listed = ", ".join(names[:_MAX_NAMES]) + (", ..." if len(names) > _MAX_NAMES else "")
        where = rollout.pipeline_url or f"pipeline #{pipeline_id} of {self.project}"
        raise IntegrationError(
            SYSTEM,
            f"pipeline #{pipeline_id} of {self.project} has no job {name} "
            f"(its jobs: {listed or 'none'}); check {setting} or the project's .gitlab-ci.yml; "
            f"see {where}",
        )

    def _too_slow(self, job: PipelineJob) -> str:
        waiting = ""
        if job.status == "created":
            waiting = ": it waits for earlier stages, where a manual job may need playing"
        return (
            f"job {job.name} (#{job.id}) did not finish within {self.step_timeout:g} s "
            f"(it is still {job.status}{waiting}); see {job.web_url}"
        )


def gitlab_deployers(gitlab: DeploysPort, poll_seconds: float = 2.0) -> DeployerFactory:
    """Makes the GitLab deployer of each GitLab service, all through `gitlab`."""

    def make(name: str, service: ServiceSettings, step_timeout: float) -> Deployer:
        return GitLabDeployer(name, service, gitlab, step_timeout, poll_seconds)

    return make
