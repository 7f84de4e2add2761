"""`POST /hooks/gitlab`: GitLab's Pipeline Hook (and Job and Deployment Hooks), accepted in
milliseconds and worked on in a job.

GitLab disables a hook after repeated failures, and permanently after 4xx answers, so only a
wrong token (401) and a body that is not JSON (400) get a 4xx; events opsloop does not use are
answered 200 and ignored. A redelivery acts once: GitLab keeps `Idempotency-Key` (17.4+) across
resends of one event, and older GitLab `X-Gitlab-Event-UUID`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.builds.progress import JobState
from bot.deps import Deps

log = logging.getLogger(__name__)

HOOK_JOB = "builds.hook"
EVENTS = ("Pipeline Hook", "Job Hook", "Deployment Hook")


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
            log.warning("cannot store a GitLab hook: %s", type(e).__name__)
            return web.Response(status=503, text="Cannot store the event yet; retry.\n")
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
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


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
