"""GitLab's refs and pipelines, in GitLab's own words: the calls ci.py builds the CI system on,
and the GitLab deployer starts its rollouts' pipelines with.

Starting a pipeline is not idempotent, so it carries the request's marker in the
`OPSLOOP_REQUEST` pipeline variable, and a create that may have reached GitLab is looked for by
that marker before it is ever sent again (client.py). `find_pipeline` looks by marker alone,
never by ref or variables: two people may ask for the same thing. Cancelling a pipeline is
idempotent, and repeating a retry finds nothing left to retry (the failed jobs have already
been replaced), so python-gitlab may repeat those two POSTs itself.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import gitlab.exceptions
from gitlab.utils import EncodedId

from bot.builds.ports import TestSummary
from integrations.gitlab.client import CLOCKS_APART, Call, GitLabCalls
from integrations.gitlab.errors import (
    Problem,
    Target,
    Unreadable,
    failure,
    ref_missing,
    variables_refused,
)
from integrations.gitlab.shapes import (
    Pipeline,
    PipelineJob,
    dicts,
    job_from,
    pipeline_from,
    summary_from,
    variables_from,
)

# The pipeline variable that carries a request's marker.
REQUEST_VARIABLE = "OPSLOOP_REQUEST"
_RECOVER_LOOKBACK = 20  # pipelines a look goes through for the one a request made


class GitLabPipelines(GitLabCalls):
    """Branches, tags and pipelines (`/projects/:id/...`), through python-gitlab. `project` is
    a path ("acme/web")."""

    async def ref_exists(self, project: str, ref: str) -> str | None:
        """Whether `ref` is a "branch" or a "tag" (`GET .../repository/branches/:ref`, then
        `.../tags/:ref`); None when it is neither."""
        if not ref.strip():
            return None

        def lookup(c: Call) -> str | None:
            lazy = c.gl.projects.get(project, lazy=True)
            managers: tuple[tuple[str, Any], ...] = (("branch", lazy.branches), ("tag", lazy.tags))
            for kind, manager in managers:
                try:
                    manager.get(ref, **c.opts())
                    return kind
                except gitlab.exceptions.GitlabGetError as e:
                    if not ref_missing(e):
                        raise
            return None

        return await self._call(lookup, Target(project))

    async def default_branch(self, project: str) -> str:
        """The project's default branch (`GET /projects/:id`)."""

        def get(c: Call) -> str:
            branch = c.gl.projects.get(project, **c.opts()).attributes.get("default_branch")
            if not isinstance(branch, str) or not branch:
                raise Problem(f"GitLab project `{project}` has no default branch (no commits yet?)")
            return branch

        return await self._call(get, Target(project))

    async def create_pipeline(
        self, project: str, ref: str, variables: Mapping[str, str], *, marker: str
    ) -> Pipeline:
        """Start a pipeline (`POST /projects/:id/pipeline`) with the request's marker in the
        `OPSLOOP_REQUEST` variable; never twice (see client.py's docstring).

        A project that lets nobody set pipeline variables refuses the marker too; a pipeline
        without variables of its own is then started without it, and cannot be found again.
        """
        started = time.time()
        wanted = {str(k): str(v) for k, v in variables.items()}
        if REQUEST_VARIABLE in wanted:
            raise failure(
                f"`{REQUEST_VARIABLE}` is opsloop's own variable; give yours another name"
            )
        marked = {**wanted, REQUEST_VARIABLE: marker}
        data: dict[str, Any] = {
            "ref": ref,
            "variables": [{"key": k, "value": v} for k, v in marked.items()],
        }

        def create(c: Call) -> Pipeline:
            pipelines = c.gl.projects.get(project, lazy=True).pipelines
            try:
                made = pipelines.create(data, **c.opts(repeat=False))
            except gitlab.exceptions.GitlabError as e:
                if wanted or not variables_refused(e):
                    raise
                made = pipelines.create({"ref": ref}, **c.opts(repeat=False))
            return pipeline_from(made.attributes, project)

        def made_already(c: Call) -> Pipeline | None:
            return _marked_pipeline(c, project, ref, marker, started, self._username(c))

        target = Target(project, refused=f"GitLab refused to start a pipeline on `{ref}`")
        return await self._call(create, target, recover=made_already, resend=False)

    async def find_pipeline(
        self, project: str, ref: str, marker: str, since: float
    ) -> Pipeline | None:
        """The pipeline started on `ref` with `marker` (at or after the Unix time `since`): the
        newest pipelines this token started on `ref` since then (`GET .../pipelines`), each
        one's variables read (`GET .../pipelines/:id/variables`) for the marker."""

        def find(c: Call) -> Pipeline | None:
            return _marked_pipeline(c, project, ref, marker, since, self._username(c))

        return await self._call(find, Target(project))

    async def get_pipeline(self, project: str, pipeline_id: int) -> Pipeline:
        """One pipeline by its id, not its iid (`GET /projects/:id/pipelines/:pipeline_id`)."""

        def get(c: Call) -> Pipeline:
            pipelines = c.gl.projects.get(project, lazy=True).pipelines
            return pipeline_from(pipelines.get(pipeline_id, **c.opts()).attributes, project)

        return await self._call(get, pipeline_target(project, pipeline_id))

    async def latest_pipeline(self, project: str, ref: str | None = None) -> Pipeline | None:
        """The newest pipeline by id (`GET .../pipelines?order_by=id&sort=desc`), on `ref` if
        given, read in full; None when there is none."""
        filters: dict[str, Any] = {"ref": ref} if ref else {}

        def latest(c: Call) -> Pipeline | None:
            pipelines = c.gl.projects.get(project, lazy=True).pipelines
            found = pipelines.list(
                order_by="id", sort="desc", per_page=1, get_all=False, **filters, **c.opts()
            )
            if not found:
                return None
            full = pipelines.get(found[0].get_id(), **c.opts())
            return pipeline_from(full.attributes, project)

        return await self._call(latest, Target(project))

    async def pipeline_jobs(self, project: str, pipeline_id: int) -> list[PipelineJob]:
        """The pipeline's jobs without the retried ones (`GET .../pipelines/:id/jobs`), oldest
        first."""
        return await self._call(
            lambda c: jobs_of(c, project, pipeline_id), pipeline_target(project, pipeline_id)
        )

    async def cancel_pipeline(self, project: str, pipeline_id: int) -> Pipeline:
        """Cancel it (`POST .../pipelines/:id/cancel`); a finished pipeline stays as it is."""
        return await self._pipeline_action(project, pipeline_id, "cancel")

    async def retry_pipeline(self, project: str, pipeline_id: int) -> Pipeline:
        """Retry its failed and canceled jobs (`POST .../pipelines/:id/retry`); they get new job
        ids."""
        return await self._pipeline_action(project, pipeline_id, "retry")

    async def test_summary(self, project: str, pipeline_id: int) -> TestSummary | None:
        """`GET .../pipelines/:id/test_report_summary`; None when no job reported tests."""

        def summary(c: Call) -> TestSummary | None:
            path = f"{project_path(project)}/pipelines/{pipeline_id}/test_report_summary"
            return summary_from(c.gl.http_get(path, **c.opts()))

        return await self._call(summary, pipeline_target(project, pipeline_id))

    async def _pipeline_action(self, project: str, pipeline_id: int, action: str) -> Pipeline:
        def act(c: Call) -> Pipeline:
            path = f"{project_path(project)}/pipelines/{pipeline_id}/{action}"
            answer = c.gl.http_post(path, **c.opts())
            if not isinstance(answer, dict):
                raise Unreadable("not a pipeline")
            return pipeline_from(answer, project)

        return await self._call(act, pipeline_target(project, pipeline_id))


def project_path(project: str) -> str:
    """`/projects/acme%2Fweb`: the project's API path for requests made without a manager."""
    return f"/projects/{EncodedId(project)}"


def pipeline_target(project: str, pipeline_id: int) -> Target:
    return Target(project, thing=f"pipeline #{pipeline_id} of {project}")


def jobs_of(c: Call, project: str, pipeline_id: int) -> list[PipelineJob]:
    """The pipeline's jobs without the retried ones, oldest first."""
    path = f"{project_path(project)}/pipelines/{pipeline_id}/jobs"
    found = c.gl.http_list(path, query_data={"per_page": 100}, get_all=True, **c.opts())
    return sorted((job_from(j) for j in dicts(found)), key=lambda j: j.id)


def _marked_pipeline(
    c: Call, project: str, ref: str, marker: str, since: float, username: str
) -> Pipeline | None:
    """The pipeline on `ref` whose `OPSLOOP_REQUEST` variable is `marker`, among the newest this
    token started since `since`."""
    pipelines = c.gl.projects.get(project, lazy=True).pipelines
    recent = pipelines.list(
        ref=ref,
        source="api",
        username=username,
        updated_after=(datetime.fromtimestamp(since, UTC) - CLOCKS_APART).isoformat(),
        order_by="id",
        sort="desc",
        per_page=_RECOVER_LOOKBACK,
        get_all=False,
        **c.opts(),
    )
    for candidate in recent:
        pid = int(candidate.get_id() or 0)
        path = f"{project_path(project)}/pipelines/{pid}/variables"
        found = c.gl.http_get(path, **c.opts())
        if isinstance(found, list) and variables_from(found).get(REQUEST_VARIABLE) == marker:
            return pipeline_from(pipelines.get(pid, **c.opts()).attributes, project)
    return None
