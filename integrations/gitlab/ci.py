"""The CI system (bot/builds/ports.py) on GitLab pipelines: a run is a pipeline, known by its id
(not its iid), and GitLab's statuses are the bot's words as they come."""

from __future__ import annotations

from collections.abc import Mapping

from bot.builds.ports import Run, RunJob
from integrations.gitlab.pipelines import GitLabPipelines
from integrations.gitlab.shapes import Pipeline, PipelineJob


class GitLabCI(GitLabPipelines):
    """`CISystem` over GitLab's pipelines (`ref_exists`, `default_branch` and `test_summary`
    are GitLabPipelines' own)."""

    async def start_run(
        self, project: str, ref: str, variables: Mapping[str, str], *, marker: str
    ) -> Run:
        """Start a pipeline carrying the request's marker; never twice."""
        return run_from(await self.create_pipeline(project, ref, variables, marker=marker))

    async def find_run(self, project: str, ref: str, marker: str, since: float) -> Run | None:
        """The pipeline started on `ref` with `marker` since `since`, or None."""
        pipeline = await self.find_pipeline(project, ref, marker, since)
        return run_from(pipeline) if pipeline is not None else None

    async def get_run(self, project: str, run_id: int) -> Run:
        """The pipeline with this id."""
        return run_from(await self.get_pipeline(project, run_id))

    async def latest_run(self, project: str, ref: str | None = None) -> Run | None:
        """The newest pipeline (on `ref` if given), or None."""
        pipeline = await self.latest_pipeline(project, ref)
        return run_from(pipeline) if pipeline is not None else None

    async def run_jobs(self, project: str, run_id: int) -> list[RunJob]:
        """The pipeline's jobs without the retried ones, oldest first."""
        return [run_job_from(job) for job in await self.pipeline_jobs(project, run_id)]

    async def cancel_run(self, project: str, run_id: int) -> Run:
        """Cancel the pipeline; a finished one stays as it is."""
        return run_from(await self.cancel_pipeline(project, run_id))

    async def retry_run(self, project: str, run_id: int) -> Run:
        """Retry the pipeline's failed and canceled jobs."""
        return run_from(await self.retry_pipeline(project, run_id))


def run_from(pipeline: Pipeline) -> Run:
    return Run(
        project=pipeline.project,
        id=pipeline.id,
        ref=pipeline.ref,
        sha=pipeline.sha,
        status=pipeline.status,
        url=pipeline.web_url,
        started_at=pipeline.started_at,
        finished_at=pipeline.finished_at,
        duration=pipeline.duration,
    )


def run_job_from(job: PipelineJob) -> RunJob:
    return RunJob(
        id=job.id,
        name=job.name,
        stage=job.stage,
        status=job.status,
        url=job.web_url,
        duration=job.duration,
        failure_reason=job.failure_reason,
        allow_failure=job.allow_failure,
    )
