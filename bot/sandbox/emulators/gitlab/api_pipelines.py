"""Pipelines and jobs: create, list, get, cancel, retry (a pipeline or one job), jobs, variables,
test report summary, and manual jobs (`POST /projects/:id/jobs/:job_id/play`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from . import ci_shapes
from .http import ApiError, invalid, list_param, page_of, read_params, text_param, time_param
from .models import JSON, EmulatedProject, EmulatedUser
from .pipelines import COMPLETED, JobRecord, PipelineRecord
from .repository import ZERO_SHA
from .state import STATE, GitLabState

API = "/api/v4"
_KEY = re.compile(r"\A[a-zA-Z0-9_]+\Z")
_VARIABLE_TYPES = ("env_var", "file")
_SCOPES = ("running", "pending", "finished", "branches", "tags")
_ORDERS = ("id", "status", "ref", "updated_at", "user_id")
_JOB_STATUSES = (
    "created",
    "pending",
    "running",
    "failed",
    "success",
    "canceled",
    "skipped",
    "waiting_for_resource",
    "manual",
)


def _refused(problem: str) -> ApiError:
    """What GitLab's pipeline creation answers when it refuses: `{"message": {"base": [...]}}`."""
    return ApiError(400, {"message": {"base": [problem]}})


def _variables(raw: Any) -> list[tuple[str, str, str]]:
    """`variables` as `[{key, value, variable_type?}]`: (key, value, type) each."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid("variables is invalid")
    found = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise invalid("variables is invalid")
        value = item.get("value", "")
        kind = item.get("variable_type") or "env_var"
        if kind not in _VARIABLE_TYPES:
            raise invalid("variables[variable_type] does not have a valid value")
        found.append((item["key"], "" if value is None else str(value), str(kind)))
    return found


def create_pipeline(
    state: GitLabState,
    project: EmulatedProject,
    ref: str,
    variables: list[tuple[str, str, str]],
    *,
    source: str,
    user: EmulatedUser,
) -> PipelineRecord:
    """Starts a pipeline on a branch or tag, refusing what GitLab refuses."""
    repo = state.repos.of(project)
    resolved = repo.resolve(ref)
    if resolved is None:
        raise _refused("Reference not found")
    if variables and state.ci.variables_restricted:
        raise _refused("Insufficient permissions to set pipeline variables")
    for key, value, _ in variables:
        if not _KEY.match(key) or len(key) > 255:
            raise _refused(
                "Failed to persist the pipeline: Validation failed: "
                "Variables key can contain only letters, digits and '_'."
            )
        if len(value) > 10_000:
            raise _refused(
                "Failed to persist the pipeline: Validation failed: Variables value is too long"
            )
    kind, sha = resolved
    parent = repo.commits[sha].parent if source == "push" else None
    return state.ci.create(
        project.id,
        ref,
        tag=kind == "tag",
        sha=sha,
        before_sha=parent or ZERO_SHA,
        source=source,
        user_id=user.id,
        variables=variables,
    )


def _pipeline_json(request: web.Request, state: GitLabState, p: PipelineRecord) -> JSON:
    project = state.find_project(p.project_id)
    return ci_shapes.pipeline(p, project, state.user, state.public_url(request))


def _id(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit():
        raise invalid(f"{name} is invalid")
    return int(raw)


def _find(request: web.Request) -> tuple[GitLabState, PipelineRecord]:
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    return state, state.ci.find(project.id, _id(request, "pipeline_id"))


def _filters(state: GitLabState, params: JSON) -> list[Callable[[PipelineRecord], bool]]:
    scope = text_param(params, "scope")
    if scope is not None and scope not in _SCOPES:
        raise invalid("scope does not have a valid value")
    tests: list[Callable[[PipelineRecord], bool]] = []
    if scope in ("running", "pending"):
        tests.append(lambda p: p.status == scope)
    elif scope == "finished":
        tests.append(lambda p: p.status in COMPLETED)
    elif scope in ("branches", "tags"):
        tests.append(lambda p: p.tag == (scope == "tags"))
    for name in ("status", "ref", "sha", "source"):
        value = text_param(params, name)
        if value is not None:
            tests.append(_equals(name, value))
    username = text_param(params, "username")
    if username is not None:
        wanted = state.user_named(username)
        tests.append(lambda p: wanted is not None and p.user_id == wanted.id)
    for name in ("updated_after", "updated_before", "created_after", "created_before"):
        moment = time_param(params, name)
        if moment is not None:
            tests.append(_between(name, moment))
    return tests


def _equals(name: str, value: str) -> Callable[[PipelineRecord], bool]:
    def test(p: PipelineRecord) -> bool:
        return bool(getattr(p, name) == value)

    return test


def _between(name: str, moment: datetime) -> Callable[[PipelineRecord], bool]:
    """`updated_after` and the like: the field named first, compared with the moment."""
    field, _, side = name.rpartition("_")
    attribute = f"{field}_at"

    def test(p: PipelineRecord) -> bool:
        value: datetime = getattr(p, attribute)
        return value >= moment if side == "after" else value <= moment

    return test


async def list_pipelines(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    params = await read_params(request)
    order_by = text_param(params, "order_by") or "id"
    sort = text_param(params, "sort") or "desc"
    if order_by not in _ORDERS:
        raise invalid("order_by does not have a valid value")
    if sort not in ("asc", "desc"):
        raise invalid("sort does not have a valid value")
    tests = _filters(state, params)
    found = [p for p in state.ci.of_project(project.id) if all(t(p) for t in tests)]
    if text_param(params, "scope") in ("branches", "tags"):
        latest: dict[str, PipelineRecord] = {}
        for p in sorted(found, key=lambda p: p.id):
            latest[p.ref] = p
        found = list(latest.values())
    found.sort(key=lambda p: (getattr(p, order_by), p.id), reverse=sort == "desc")
    base = state.public_url(request)
    return page_of(request, [ci_shapes.pipeline_basic(p, project, base) for p in found])


async def create(request: web.Request) -> web.Response:
    """`POST /projects/:id/pipeline` with `ref` and `variables` (201, or 400 with the reason)."""
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    params = await read_params(request)
    ref = text_param(params, "ref")
    if not ref:
        raise invalid("ref is missing")
    variables = _variables(params.get("variables"))
    made = create_pipeline(state, project, ref, variables, source="api", user=state.token_user)
    return web.json_response(_pipeline_json(request, state, made), status=201)


async def latest(request: web.Request) -> web.Response:
    """The newest pipeline for the head commit of `ref` (default: the default branch)."""
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    params = await read_params(request)
    ref = text_param(params, "ref") or project.default_branch
    resolved = state.repos.of(project).resolve(ref)
    found = [
        p
        for p in state.ci.of_project(project.id)
        if resolved is not None and p.ref == ref and p.sha == resolved[1]
    ]
    if not found:
        raise ApiError(404, {"message": "404 Not found"})
    return web.json_response(_pipeline_json(request, state, max(found, key=lambda p: p.id)))


async def get(request: web.Request) -> web.Response:
    state, pipeline = _find(request)
    return web.json_response(_pipeline_json(request, state, pipeline))


async def cancel(request: web.Request) -> web.Response:
    """Cancels what has not finished; a finished pipeline comes back unchanged (200)."""
    state, pipeline = _find(request)
    state.ci.cancel(pipeline)
    return web.json_response(_pipeline_json(request, state, pipeline))


async def retry(request: web.Request) -> web.Response:
    state, pipeline = _find(request)
    state.ci.retry(pipeline, state.token_user.id)
    return web.json_response(_pipeline_json(request, state, pipeline), status=201)


def _job_json(request: web.Request, state: GitLabState, p: PipelineRecord, j: JobRecord) -> JSON:
    project = state.find_project(p.project_id)
    head = state.repos.of(project).commits.get(p.sha)
    base = state.public_url(request)
    return ci_shapes.job(j, p, project, state.user, head, base, state.clock())


def _job_scope(params: JSON) -> list[str] | None:
    scope = list_param(params, "scope")
    if scope is not None and any(s not in _JOB_STATUSES for s in scope):
        raise invalid("scope does not have a valid value")
    return scope or None


async def jobs(request: web.Request) -> web.Response:
    """The pipeline's jobs, newest first; `include_retried=true` adds the retried ones."""
    state, pipeline = _find(request)
    params = await read_params(request)
    scope = _job_scope(params)
    with_retried = text_param(params, "include_retried") == "true"
    found = [
        j
        for j in sorted(pipeline.jobs, key=lambda j: j.id, reverse=True)
        if (with_retried or not j.retried) and (scope is None or j.status in scope)
    ]
    return page_of(request, [_job_json(request, state, pipeline, j) for j in found])


async def variables(request: web.Request) -> web.Response:
    _, pipeline = _find(request)
    return web.json_response(ci_shapes.variables(pipeline))


async def test_report_summary(request: web.Request) -> web.Response:
    _, pipeline = _find(request)
    return web.json_response(ci_shapes.test_report_summary(pipeline))


async def project_jobs(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    params = await read_params(request)
    scope = _job_scope(params)
    found = [
        (p, j)
        for p in state.ci.of_project(project.id)
        for j in p.jobs
        if scope is None or j.status in scope
    ]
    found.sort(key=lambda pj: pj[1].id, reverse=True)
    return page_of(request, [_job_json(request, state, p, j) for p, j in found])


async def get_job(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    pipeline, job = state.ci.find_job(project.id, _id(request, "job_id"))
    return web.json_response(_job_json(request, state, pipeline, job))


async def play_job(request: web.Request) -> web.Response:
    """Starts a manual job (200 with the job); any other job is `400 Unplayable Job`."""
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    pipeline, job = state.ci.find_job(project.id, _id(request, "job_id"))
    state.ci.play(pipeline, job, state.token_user.id)
    return web.json_response(_job_json(request, state, pipeline, job))


async def retry_job(request: web.Request) -> web.Response:
    """Runs a failed or canceled job again: 201 with the new job; any other job is
    `403 Job is not retryable`."""
    state = request.app[STATE]
    project = state.find_project(request.match_info["id"])
    pipeline, job = state.ci.find_job(project.id, _id(request, "job_id"))
    clone = state.ci.retry_job(pipeline, job, state.token_user.id)
    return web.json_response(_job_json(request, state, pipeline, clone), status=201)


def add_routes(app: web.Application) -> None:
    project = f"{API}/projects/{{id}}"
    one = f"{project}/pipelines/{{pipeline_id}}"
    app.router.add_get(f"{project}/pipelines", list_pipelines)
    app.router.add_post(f"{project}/pipeline", create)
    app.router.add_get(f"{project}/pipelines/latest", latest)
    app.router.add_get(one, get)
    app.router.add_post(f"{one}/cancel", cancel)
    app.router.add_post(f"{one}/retry", retry)
    app.router.add_get(f"{one}/jobs", jobs)
    app.router.add_get(f"{one}/variables", variables)
    app.router.add_get(f"{one}/test_report_summary", test_report_summary)
    app.router.add_get(f"{project}/jobs", project_jobs)
    app.router.add_get(f"{project}/jobs/{{job_id}}", get_job)
    app.router.add_post(f"{project}/jobs/{{job_id}}/play", play_job)
    app.router.add_post(f"{project}/jobs/{{job_id}}/retry", retry_job)
