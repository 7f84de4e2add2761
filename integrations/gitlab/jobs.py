"""The calls the GitLab deployer (deployer.py) makes: a pipeline per rollout,
and the manual jobs its canary steps play, each safe to repeat after a crash."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import gitlab.exceptions

from integrations.gitlab.client import Call
from integrations.gitlab.errors import Problem, Target, Unreadable
from integrations.gitlab.pipelines import GitLabPipelines, jobs_of, project_path
from integrations.gitlab.shapes import Pipeline, PipelineJob, job_from

# Job statuses in which playing would start the job; and those of a job already under way or
# finished, which a play must leave alone (GitLab would retry a finished manual job).
_PLAYABLE = frozenset({"manual", "scheduled"})
_STARTED = frozenset(
    {
        "waiting_for_resource",
        "preparing",
        "pending",
        "running",
        "waiting_for_callback",
        "canceling",
        "success",
        "failed",
        "canceled",
    }
)


class DeploysPort(Protocol):
    """What the GitLab deployer needs of GitLab: its rollout's pipeline, and the manual jobs a
    canary step plays. `project` is a path ("acme/api")."""

    async def default_branch(self, project: str) -> str:
        """The project's default branch."""
        ...

    async def create_pipeline(
        self, project: str, ref: str, variables: Mapping[str, str], *, marker: str
    ) -> Pipeline:
        """Start a pipeline carrying the request's `marker`; never twice."""
        ...

    async def find_pipeline(
        self, project: str, ref: str, marker: str, since: float
    ) -> Pipeline | None:
        """The pipeline started on `ref` with `marker` (at or after the Unix time `since`)."""
        ...

    async def pipeline_jobs(self, project: str, pipeline_id: int) -> list[PipelineJob]:
        """The pipeline's current jobs, oldest first."""
        ...

    async def play_job(self, project: str, job_id: int) -> PipelineJob:
        """Start a manual job. A job already started (pending, running or finished, e.g. played
        before a crash) comes back as it is and is never started twice; a job that cannot be
        played (still `created` behind earlier stages, skipped) is an IntegrationError."""
        ...

    async def get_job(self, project: str, job_id: int) -> PipelineJob:
        """One job by its id."""
        ...

    async def retry_job(self, project: str, job_id: int) -> PipelineJob:
        """Run a failed or canceled job again; GitLab makes a new job of the same name, which
        is returned. Never twice: once the pipeline has a newer job of that name (a retry
        made before a crash, or by a person in GitLab), that job is returned instead."""
        ...


class GitLabJobs(GitLabPipelines):
    """`DeploysPort` through python-gitlab."""

    async def play_job(self, project: str, job_id: int) -> PipelineJob:
        """Start a manual job (`POST /projects/:id/jobs/:job_id/play`), once.

        The job is read first and played only while it is `manual` (or `scheduled`): GitLab
        would run a finished manual job again if asked to play it, so a repeat (after a crash,
        or of a request whose answer was lost) must not reach the play endpoint. A play GitLab
        refuses as `Unplayable Job` because someone else started the job meanwhile is not a
        failure either; the job is read again and returned.
        """

        def play(c: Call) -> PipelineJob:
            found = job_from(_read_job(c, project, job_id))
            if found.status in _STARTED:
                return found
            if found.status not in _PLAYABLE:
                raise Problem(_unplayable(project, found))
            try:
                return _post_for_job(c, f"{project_path(project)}/jobs/{job_id}/play")
            except gitlab.exceptions.GitlabError as e:
                if e.response_code != 400:
                    raise
                again = job_from(_read_job(c, project, job_id))
                if again.status in _STARTED:
                    return again
                raise Problem(_unplayable(project, again)) from e

        def played_already(c: Call) -> PipelineJob | None:
            # A play whose answer was lost: the job is no longer waiting, so it went through.
            found = job_from(_read_job(c, project, job_id))
            return found if found.status in _STARTED else None

        return await self._call(play, _job_target(project, job_id), recover=played_already)

    async def retry_job(self, project: str, job_id: int) -> PipelineJob:
        """Run a failed or canceled job again (`POST /projects/:id/jobs/:job_id/retry`), once.

        The job's pipeline is read first: a newer job of the same name means the job was
        retried already (before a crash, by a request whose answer was lost, or by a person in
        GitLab), and that newer job is returned without asking GitLab to retry again.
        """

        def newer(c: Call) -> PipelineJob | None:
            job = _read_job(c, project, job_id)
            pipeline_id = int((job.get("pipeline") or {}).get("id", 0))
            jobs = jobs_of(c, project, pipeline_id)
            later = [j for j in jobs if j.name == job["name"] and j.id > job_id]
            return later[-1] if later else None  # oldest first: the last is the newest

        def retry(c: Call) -> PipelineJob:
            already = newer(c)
            if already is not None:
                return already
            try:
                return _post_for_job(c, f"{project_path(project)}/jobs/{job_id}/retry")
            except gitlab.exceptions.GitlabError as e:
                if e.response_code != 403:
                    raise
                job = job_from(_read_job(c, project, job_id))
                raise Problem(
                    f"GitLab cannot retry job {job.name} (#{job.id}) of {project}: it is "
                    f"{job.status}, and only a failed or canceled job can run again; "
                    f"see {job.web_url}"
                ) from e

        return await self._call(retry, _job_target(project, job_id), recover=newer)

    async def get_job(self, project: str, job_id: int) -> PipelineJob:
        """One job (`GET /projects/:id/jobs/:job_id`)."""

        def get(c: Call) -> PipelineJob:
            return job_from(_read_job(c, project, job_id))

        return await self._call(get, _job_target(project, job_id))


def _job_target(project: str, job_id: int) -> Target:
    return Target(project, thing=f"job #{job_id} of {project}")


def _read_job(c: Call, project: str, job_id: int) -> dict[str, Any]:
    attributes: dict[str, Any] = (
        c.gl.projects.get(project, lazy=True).jobs.get(job_id, **c.opts()).attributes
    )
    return attributes


def _post_for_job(c: Call, path: str) -> PipelineJob:
    """POST an action on a job (play, retry) and read the job GitLab answers with; posted
    directly, since python-gitlab's ProjectJob.play() only returns the job in newer versions."""
    answer = c.gl.http_post(path, **c.opts(repeat=False))
    if not isinstance(answer, dict):
        raise Unreadable("not a job")
    return job_from(answer)


def _unplayable(project: str, job: PipelineJob) -> str:
    """Why a job cannot be played, for a person: GitLab itself only says `Unplayable Job`."""
    named = f"job {job.name} (#{job.id}) of {project}"
    if job.status == "created":
        why = f"GitLab cannot play {named} yet: it waits for earlier stages of its pipeline"
    elif job.status == "skipped":
        why = f"GitLab cannot play {named}: it was skipped because an earlier stage failed"
    else:
        why = f"GitLab refused to play {named} (it is {job.status}: Unplayable Job)"
    return f"{why}; see {job.web_url}"
