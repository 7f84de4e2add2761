"""`POST /hooks/gitlab`: GitLab's Pipeline Hook (and Job and Deployment Hooks), accepted in
milliseconds and worked on in a job.

GitLab disables a hook after repeated failures, and permanently after 4xx answers, so only a
wrong token (401) and a body that GitLab would never send (400: not JSON, or a field the job
reads missing or of the wrong type, named in the answer) get a 4xx; events opsloop does not use
are answered 200 and ignored. A body is checked here, before the 2xx, so that an accepted event
never fails later in its job. A redelivery acts once: GitLab keeps `Idempotency-Key` (17.4+)
across resends of one event, and older GitLab `X-Gitlab-Event-UUID`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from bot import outages
from bot.builds.progress import JobState
from bot.deps import Deps
from bot.outages import REDIS

HOOK_JOB = "builds.hook"
EVENTS = ("Pipeline Hook", "Job Hook", "Deployment Hook")
MAX_DURATION = 10**8  # s, three years: longer than any pipeline runs


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Project(_Lenient):
    path_with_namespace: StrictStr
    web_url: StrictStr | None = None


class _PipelineAttributes(_Lenient):
    id: int
    status: StrictStr = ""
    ref: StrictStr | None = None
    sha: StrictStr | None = None
    url: StrictStr | None = None
    created_at: StrictStr | None = None
    finished_at: StrictStr | None = None
    # Seconds; bounded, since the live message shows it as a timedelta.
    duration: Annotated[float, Field(ge=0, le=MAX_DURATION, allow_inf_nan=False)] | None = None


class _Build(_Lenient):
    id: int
    name: StrictStr | None = None
    stage: StrictStr | None = None
    status: StrictStr | None = None
    failure_reason: StrictStr | None = None
    allow_failure: bool | None = None


class _PipelineHook(_Lenient):
    """What `pipeline_update` reads of a Pipeline Hook."""

    object_attributes: _PipelineAttributes
    project: _Project
    builds: list[_Build] | None = None


class _JobHook(_Lenient):
    """What the hook job reads of a Job Hook; without these it ignores the event."""

    project: _Project | None = None
    pipeline_id: int | None = None


def hook_problem(event: str, body: dict[str, Any]) -> str | None:
    """The first field the hook job would fail on, as `object_attributes.id: ...`, or None."""
    if event == "Pipeline Hook" and body.get("object_kind") == "pipeline":
        model: type[BaseModel] = _PipelineHook
    elif event == "Job Hook":
        model = _JobHook
    else:
        return None
    try:
        model.model_validate(body)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        return f"{field}: {_PLAIN.get(first['type'], first['msg'])}"
    return None


# pydantic's words for the errors a hook body can have, without its class names.
_PLAIN = {
    "missing": "is missing",
    "model_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "greater_than_equal": f"must be a number of seconds from 0 to {MAX_DURATION}",
    "less_than_equal": f"must be a number of seconds from 0 to {MAX_DURATION}",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
}


def gitlab_hook(deps: Deps) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler for POST /hooks/gitlab."""

    async def handle(request: web.Request) -> web.Response:
        secret = deps.settings.secret("gitlab_webhook_secret")
        if not secret:
            raise web.HTTPNotFound(text="Not found: OPSLOOP_GITLAB_WEBHOOK_SECRET is unset.\n")
        given = request.headers.get("X-Gitlab-Token", "")
        # Constant-time comparison: the secret must not leak through response timing.
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.Response(status=401, text="Unauthorized: wrong X-Gitlab-Token.\n")
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            return web.Response(status=400, text="Invalid payload: the body is not JSON.\n")
        if not isinstance(body, dict):
            return web.Response(status=400, text="Invalid payload: must be a JSON object.\n")
        event = request.headers.get("X-Gitlab-Event", "")
        if event not in EVENTS:
            return web.json_response({"status": "ignored", "event": event})
        problem = hook_problem(event, body)
        if problem:
            return web.Response(status=400, text=f"Invalid payload: {problem}\n")
        uuid = (
            request.headers.get("Idempotency-Key")
            or request.headers.get("X-Gitlab-Event-UUID")
            or hashlib.sha256(raw).hexdigest()[:32]
        )
        try:
            # A Redis that does not answer in time may still store it (bot.store.batching);
            # a redelivery is then recognised as a duplicate.
            fresh = await deps.queue.enqueue(
                HOOK_JOB, {"event": event, "body": body}, job_id=f"gitlab:{uuid}"
            )
        except Exception as e:
            outages.redis_failure(e, "storing a GitLab hook")
            return web.Response(status=503, text="Cannot store the event yet; retry.\n")
        if outages.down:
            outages.recovered(REDIS)
        if fresh:
            deps.metrics.enqueued(HOOK_JOB).inc()
        else:
            deps.metrics.duplicate("gitlab").inc()
        return web.json_response({"status": "accepted" if fresh else "duplicate"})

    return handle


def hook_time(value: Any) -> float | None:
    """GitLab's hook times: "2026-11-21 10:00:00 UTC" (older) or ISO 8601."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace(" UTC", "+00:00").replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError):  # OverflowError: year 1 east of UTC
        return None


def pipeline_update(body: dict[str, Any]) -> tuple[str, int, str, list[JobState], dict[str, Any]]:
    """(project, pipeline id, status, jobs, fields) from a Pipeline Hook body."""
    attrs = body.get("object_attributes") or {}
    project = body.get("project") or {}
    path = str(project.get("path_with_namespace", ""))
    web = str(project.get("web_url", "")).rstrip("/")
    jobs = [
        JobState(
            id=int(b["id"]),
            name=str(b.get("name", "")),
            stage=str(b.get("stage", "")),
            status=str(b.get("status", "")),
            web_url=f"{web}/-/jobs/{b['id']}" if web else "",
            failure_reason=b.get("failure_reason"),
            allow_failure=bool(b.get("allow_failure", False)),
        )
        for b in body.get("builds") or []
        if isinstance(b, dict) and "id" in b
    ]
    fields = {
        "ref": attrs.get("ref", ""),
        "sha": attrs.get("sha", ""),
        "web_url": attrs.get("url") or (f"{web}/-/pipelines/{attrs.get('id')}" if web else ""),
        "started_at": hook_time(attrs.get("created_at")),
        "finished_at": hook_time(attrs.get("finished_at")),
        "duration": attrs.get("duration"),
    }
    return path, int(attrs["id"]), str(attrs.get("status", "")), jobs, fields
