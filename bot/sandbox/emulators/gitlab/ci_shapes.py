"""GitLab's JSON for CI and repositories: pipelines, jobs, test reports, commits, branches, tags,
project webhooks, and the bodies of Pipeline Hook and Job Hook deliveries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .models import JSON, EmulatedProject, EmulatedUser
from .pipelines import JobRecord, PipelineRecord
from .repository import CommitRecord, TagRecord
from .shapes import UserLookup, iso, user

if TYPE_CHECKING:
    from .hooks import HookRecord

# status -> (icon, text, label, group) as GitLab's detailed_status shows them.
_DETAILS = {
    "created": ("status_created", "created", "created", "created"),
    "waiting_for_resource": ("status_pending", "waiting", "waiting for resource", "waiting"),
    "preparing": ("status_preparing", "preparing", "preparing", "preparing"),
    "pending": ("status_pending", "pending", "pending", "pending"),
    "running": ("status_running", "running", "running", "running"),
    "success": ("status_success", "passed", "passed", "success"),
    "failed": ("status_failed", "failed", "failed", "failed"),
    "canceling": ("status_canceled", "canceling", "canceling", "canceling"),
    "canceled": ("status_canceled", "canceled", "canceled", "canceled"),
    "skipped": ("status_skipped", "skipped", "skipped", "skipped"),
    "manual": ("status_manual", "manual", "manual play action", "manual"),
    "scheduled": ("status_scheduled", "delayed", "delayed manual action", "scheduled"),
}
_WARNING = ("status_warning", "warning", "passed with warnings", "success-with-warnings")
_BLOCKED = ("status_manual", "blocked", "waiting for manual action", "manual")
_VISIBILITY_LEVEL = {"private": 0, "internal": 10, "public": 20}


def hook_time(moment: datetime | None) -> str | None:
    """The timestamp form of pipeline webhooks: `2016-08-12 15:23:28 UTC`."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _short_iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _web(project: EmulatedProject, base: str) -> str:
    return f"{base}/{project.path_with_namespace}"


def detailed_status(
    status: str, warnings: bool, path: str, *, pipeline: bool, allow_failure: bool = False
) -> JSON:
    if status == "success" and warnings:
        icon, text, label, group = _WARNING
    elif status == "manual" and pipeline:
        icon, text, label, group = _BLOCKED
    elif status == "failed" and allow_failure:
        icon, text, label, group = _WARNING[0], "failed", "failed (allowed to fail)", "failed"
    else:
        icon, text, label, group = _DETAILS.get(status, ("status_notfound", status, status, status))
    return {
        "icon": icon,
        "text": text,
        "label": label,
        "group": group,
        "tooltip": label,
        "has_details": True,
        "details_path": path,
        "illustration": None,
        "favicon": f"/assets/ci_favicons/favicon_{icon}.png",
    }


def pipeline_url(p: PipelineRecord, project: EmulatedProject, base: str) -> str:
    return f"{_web(project, base)}/-/pipelines/{p.id}"


def job_url(j: JobRecord, project: EmulatedProject, base: str) -> str:
    return f"{_web(project, base)}/-/jobs/{j.id}"


# -- REST API -----------------------------------------------------------------------------------


def pipeline_basic(p: PipelineRecord, project: EmulatedProject, base: str) -> JSON:
    """A pipeline as lists show it (`GET /projects/:id/pipelines`)."""
    return {
        "id": p.id,
        "iid": p.iid,
        "project_id": p.project_id,
        "sha": p.sha,
        "ref": p.ref,
        "status": p.status,
        "source": p.source,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
        "web_url": pipeline_url(p, project, base),
        "name": None,
    }


def pipeline(p: PipelineRecord, project: EmulatedProject, users: UserLookup, base: str) -> JSON:
    """One pipeline (`GET .../pipelines/:id`, and the answers of create, cancel and retry)."""
    found = users(p.user_id)
    path = f"/{project.path_with_namespace}/-/pipelines/{p.id}"
    return pipeline_basic(p, project, base) | {
        "before_sha": p.before_sha,
        "tag": p.tag,
        "yaml_errors": None,
        "user": user(found, base) if found else None,
        "started_at": iso(p.started_at),
        "finished_at": iso(p.finished_at),
        "committed_at": None,
        "duration": p.duration,
        "queued_duration": p.queued_duration,
        "coverage": None,
        "detailed_status": detailed_status(p.status, p.warnings, path, pipeline=True),
        "archived": False,
    }


def commit(c: CommitRecord, project: EmulatedProject, base: str) -> JSON:
    """A commit as the repository API and jobs show it."""
    return {
        "id": c.sha,
        "short_id": c.sha[:8],
        "created_at": iso(c.at),
        "parent_ids": [c.parent] if c.parent else [],
        "title": c.title,
        "message": c.message,
        "author_name": c.author_name,
        "author_email": c.author_email,
        "authored_date": iso(c.at),
        "committer_name": c.author_name,
        "committer_email": c.author_email,
        "committed_date": iso(c.at),
        "trailers": {},
        "extended_trailers": {},
        "web_url": f"{_web(project, base)}/-/commit/{c.sha}",
    }


def _runner(j: JobRecord) -> JSON | None:
    if j.started_at is None:
        return None
    return {
        "id": 1,
        "description": "emulated runner",
        "ip_address": None,
        "active": True,
        "paused": False,
        "is_shared": True,
        "runner_type": "instance_type",
        "name": "gitlab-runner",
        "online": True,
        "status": "online",
    }


def job(
    j: JobRecord,
    p: PipelineRecord,
    project: EmulatedProject,
    users: UserLookup,
    head: CommitRecord | None,
    base: str,
    now: datetime,
) -> JSON:
    """A job (`GET .../pipelines/:id/jobs`, `GET /projects/:id/jobs/:job_id`)."""
    found = users(j.user_id)
    body: JSON = {
        "id": j.id,
        "status": j.status,
        "stage": j.stage,
        "name": j.name,
        "ref": p.ref,
        "tag": p.tag,
        "coverage": None,
        "allow_failure": j.allow_failure,
        "created_at": iso(j.created_at),
        "started_at": iso(j.started_at),
        "finished_at": iso(j.finished_at),
        "erased_at": None,
        "duration": j.duration(now),
        "queued_duration": j.queued_duration(now),
        "user": user(found, base) if found else None,
        "commit": commit(head, project, base) if head else None,
        # A job names its pipeline as pipeline lists do, without the list's `name`.
        "pipeline": {k: v for k, v in pipeline_basic(p, project, base).items() if k != "name"},
        "web_url": job_url(j, project, base),
        "project": {"ci_job_token_scope_enabled": False},
        "artifacts": [],
        "runner": _runner(j),
        "runner_manager": None,
        "artifacts_expire_at": None,
        "archived": False,
        "tag_list": [],
    }
    if j.status == "failed":
        body["failure_reason"] = j.failure_reason or "unknown_failure"
    return body


def variables(p: PipelineRecord) -> list[JSON]:
    return [{"key": k, "variable_type": t, "value": v} for k, v, t in p.variables]


def _suite(j: JobRecord) -> JSON:
    spec = j.spec
    skipped = min(spec.skipped_tests, spec.tests)
    failed = 0
    if j.status == "failed" and j.failure_reason == "script_failure":
        failed = max(1, min(spec.failing_tests, spec.tests - skipped))
    return {
        "name": j.name,
        "total_time": round(spec.tests * 0.05, 3),
        "total_count": spec.tests,
        "success_count": spec.tests - skipped - failed,
        "failed_count": failed,
        "skipped_count": skipped,
        "error_count": 0,
        "build_ids": [j.id],
        "suite_error": None,
    }


def test_report_summary(p: PipelineRecord) -> JSON:
    """`GET .../test_report_summary`: one suite per finished job that reports tests."""
    suites = [
        _suite(j) for j in p.latest_jobs if j.spec.tests > 0 and j.status in ("success", "failed")
    ]
    return {
        "total": {
            "time": round(sum(s["total_time"] for s in suites), 3),
            "count": sum(s["total_count"] for s in suites),
            "success": sum(s["success_count"] for s in suites),
            "failed": sum(s["failed_count"] for s in suites),
            "skipped": sum(s["skipped_count"] for s in suites),
            "error": sum(s["error_count"] for s in suites),
            "suite_error": None,
        },
        "test_suites": suites,
    }


def branch(name: str, head: CommitRecord, project: EmulatedProject, base: str) -> JSON:
    is_default = name == project.default_branch
    return {
        "name": name,
        "merged": False,
        "protected": is_default,
        "default": is_default,
        "developers_can_push": False,
        "developers_can_merge": False,
        "can_push": True,
        "web_url": f"{_web(project, base)}/-/tree/{name}",
        "commit": commit(head, project, base),
    }


def tag(t: TagRecord, head: CommitRecord, project: EmulatedProject, base: str) -> JSON:
    return {
        "name": t.name,
        "message": t.message,
        "target": t.sha,
        "commit": commit(head, project, base),
        "release": None,
        "protected": False,
        "created_at": iso(t.created_at) if t.message else None,
    }


def project_hook(h: HookRecord, base: str) -> JSON:
    """A project webhook (`/projects/:id/hooks`); the token is never shown."""
    return {
        "id": h.id,
        "url": h.url,
        "name": "",
        "description": "",
        "project_id": h.project_id,
        "push_events": h.push_events,
        "push_events_branch_filter": "",
        "issues_events": False,
        "confidential_issues_events": False,
        "merge_requests_events": False,
        "tag_push_events": False,
        "note_events": False,
        "confidential_note_events": False,
        "job_events": h.job_events,
        "pipeline_events": h.pipeline_events,
        "wiki_page_events": False,
        "deployment_events": False,
        "releases_events": False,
        "enable_ssl_verification": h.enable_ssl_verification,
        "created_at": iso(h.created_at),
        "alert_status": "executable",
        "disabled_until": None,
        "url_variables": [],
        "custom_webhook_template": "",
        "custom_headers": [],
    }


# -- webhook bodies -----------------------------------------------------------------------------


def hook_user(u: EmulatedUser | None, base: str) -> JSON | None:
    if u is None:
        return None
    basic = user(u, base)
    return {
        "id": u.id,
        "name": u.display_name,
        "username": u.username,
        "avatar_url": basic["avatar_url"],
        # Without a public e-mail GitLab redacts it in webhooks.
        "email": u.public_email or "[REDACTED]",
    }


def hook_project(project: EmulatedProject, base: str) -> JSON:
    web = _web(project, base)
    host = base.split("://", 1)[-1]
    ssh = f"git@{host}:{project.path_with_namespace}.git"
    return {
        "id": project.id,
        "name": project.path,
        "description": project.description,
        "web_url": web,
        "avatar_url": None,
        "git_ssh_url": ssh,
        "git_http_url": f"{web}.git",
        "namespace": project.namespace,
        "visibility_level": _VISIBILITY_LEVEL.get(project.visibility, 0),
        "path_with_namespace": project.path_with_namespace,
        "default_branch": project.default_branch,
        "ci_config_path": "",
        "homepage": web,
        "url": ssh,
        "ssh_url": ssh,
        "http_url": f"{web}.git",
    }


def _hook_build(j: JobRecord, users: UserLookup, base: str, now: datetime) -> JSON:
    return {
        "id": j.id,
        "stage": j.stage,
        "name": j.name,
        "status": j.status,
        "created_at": hook_time(j.created_at),
        "started_at": hook_time(j.started_at),
        "finished_at": hook_time(j.finished_at),
        "duration": j.duration(now),
        "queued_duration": j.queued_duration(now),
        "failure_reason": j.failure_reason if j.status == "failed" else None,
        "when": j.spec.when,
        "manual": j.spec.when == "manual",
        "allow_failure": j.allow_failure,
        "user": hook_user(users(j.user_id), base),
        "runner": _runner(j),
        "artifacts_file": {"filename": None, "size": None},
        "environment": (
            {"name": j.spec.environment, "action": "start", "deployment_tier": "other"}
            if j.spec.environment
            else None
        ),
    }


def pipeline_hook(
    p: PipelineRecord,
    project: EmulatedProject,
    users: UserLookup,
    head: CommitRecord | None,
    base: str,
    now: datetime,
) -> JSON:
    """The body of a Pipeline Hook delivery, as GitLab's PipelineHookData builds it."""
    path = f"/{project.path_with_namespace}/-/pipelines/{p.id}"
    web = _web(project, base)
    commit_json: JSON | None = None
    if head is not None:
        commit_json = {
            "id": head.sha,
            "message": head.message,
            "title": head.title,
            "timestamp": head.at.astimezone(UTC).isoformat(timespec="seconds"),
            "url": f"{web}/-/commit/{head.sha}",
            "author": {"name": head.author_name, "email": head.author_email},
        }
    return {
        "object_kind": "pipeline",
        "object_attributes": {
            "id": p.id,
            "iid": p.iid,
            "name": None,
            "ref": p.ref,
            "tag": p.tag,
            "sha": p.sha,
            "before_sha": p.before_sha,
            "source": p.source,
            "status": p.status,
            "detailed_status": detailed_status(p.status, p.warnings, path, pipeline=True)["text"],
            "stages": list(p.stages),
            "created_at": hook_time(p.created_at),
            "finished_at": hook_time(p.finished_at),
            "duration": p.duration,
            "queued_duration": p.queued_duration,
            "variables": [{"key": k, "value": v} for k, v, _ in p.variables],
            "url": pipeline_url(p, project, base),
        },
        "merge_request": None,
        "user": hook_user(users(p.user_id), base),
        "project": hook_project(project, base),
        "commit": commit_json,
        "builds": [_hook_build(j, users, base, now) for j in p.latest_jobs],
    }


def job_hook(
    j: JobRecord,
    p: PipelineRecord,
    project: EmulatedProject,
    users: UserLookup,
    head: CommitRecord | None,
    base: str,
    now: datetime,
) -> JSON:
    """The body of a Job Hook delivery (`object_kind: build`)."""
    web = _web(project, base)
    person = hook_user(users(j.user_id), base)
    repository: dict[str, Any] = {
        "name": project.path,
        "url": f"git@{base.split('://', 1)[-1]}:{project.path_with_namespace}.git",
        "description": project.description,
        "homepage": web,
        "git_http_url": f"{web}.git",
        "git_ssh_url": f"git@{base.split('://', 1)[-1]}:{project.path_with_namespace}.git",
        "visibility_level": _VISIBILITY_LEVEL.get(project.visibility, 0),
    }
    return {
        "object_kind": "build",
        "ref": p.ref,
        "tag": p.tag,
        "before_sha": p.before_sha,
        "sha": p.sha,
        "build_id": j.id,
        "build_name": j.name,
        "build_stage": j.stage,
        "build_status": j.status,
        "build_created_at": hook_time(j.created_at),
        "build_created_at_iso": _short_iso(j.created_at),
        "build_started_at": hook_time(j.started_at),
        "build_started_at_iso": _short_iso(j.started_at),
        "build_finished_at": hook_time(j.finished_at),
        "build_finished_at_iso": _short_iso(j.finished_at),
        "build_duration": j.duration(now),
        "build_queued_duration": j.queued_duration(now),
        "build_allow_failure": j.allow_failure,
        "build_failure_reason": j.failure_reason if j.status == "failed" else None,
        "retries_count": j.retries_count,
        "pipeline_id": p.id,
        "project_id": project.id,
        "project_name": f"{project.namespace} / {project.path}",
        "user": person,
        "commit": {
            "id": p.id,
            "name": None,
            "sha": p.sha,
            "message": head.message if head else "",
            "author_name": head.author_name if head else "",
            "author_email": head.author_email if head else "",
            "author_url": None,
            "status": p.status,
            "duration": p.duration,
            "started_at": hook_time(p.started_at),
            "started_at_iso": _short_iso(p.started_at),
            "finished_at": hook_time(p.finished_at),
            "finished_at_iso": _short_iso(p.finished_at),
        },
        "repository": repository,
        "project": hook_project(project, base),
        "runner": _runner(j),
        "environment": None,
    }
