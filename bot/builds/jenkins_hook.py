"""`POST /hooks/jenkins?token=...`: the Jenkins Notification plugin's JSON, accepted in
milliseconds and worked on in a job.

The plugin posts `{name, display_name, url, build: {full_url, number, queue_id, phase, status,
url, scm, parameters, log}}` at each phase (QUEUED, STARTED, COMPLETED, FINALIZED); `url` is the
job's path relative to Jenkins (`job/folder/job/legacy-build/`), from which the job's full name
comes. It can send no header of its own, so the token rides in the query string. A call only
says that a build moved: the job asks Jenkins for the build at once (the live message moves now
rather than at the next poll); polling stays as the safety net when a call is lost.

404 while OPSLOOP_JENKINS_WEBHOOK_TOKEN is unset, 401 for a wrong token (compared in constant
time), 400 naming the field for a body the plugin would not send, 2xx once stored as a job;
503 only when Redis cannot store it (the plugin logs the failure; the poll still follows).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from bot import outages
from bot.deps import Deps
from bot.outages import REDIS

HOOK_JOB = "builds.jenkins_hook"
PHASES = ("QUEUED", "STARTED", "COMPLETED", "FINALIZED")
MAX_BODY_BYTES = 256 * 1024  # the plugin may add the log's tail; opsloop reads none of it


class BadCall(Exception):
    """A body the Notification plugin would not send; the message names the field."""


def job_name(url: str) -> str:
    """`job/folder/job/legacy-build/` (or a full URL) -> `folder/legacy-build`."""
    parts = [unquote(p) for p in url.strip("/").split("/")]
    start = parts.index("job") if "job" in parts else len(parts)
    names = parts[start:]
    if not names or len(names) % 2 or any(names[k] != "job" for k in range(0, len(names), 2)):
        raise BadCall("url: must be the job's path, `job/<name>/` (with `job/<folder>/` before)")
    return "/".join(names[1::2])


def notification(body: Any) -> tuple[str, int, str]:
    """(job full name, build number, phase) from a Notification plugin body."""
    if not isinstance(body, dict):
        raise BadCall("body: must be a JSON object")
    build = body.get("build")
    if not isinstance(build, dict):
        raise BadCall("build: is missing or not an object")
    number = build.get("number")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise BadCall("build.number: must be a whole number above 0")
    phase = build.get("phase")
    if phase not in PHASES:
        raise BadCall(f"build.phase: must be one of {', '.join(PHASES)}")
    url = body.get("url")
    if not isinstance(url, str) or not url:
        raise BadCall("url: is missing or not a string")
    return job_name(url), number, str(phase)


def jenkins_hook(deps: Deps) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler for POST /hooks/jenkins."""

    async def handle(request: web.Request) -> web.Response:
        token = deps.settings.secret("jenkins_webhook_token")
        if not token:
            raise web.HTTPNotFound(text="Not found: OPSLOOP_JENKINS_WEBHOOK_TOKEN is unset.\n")
        given = request.query.get("token", "")
        # Constant-time comparison: the token must not leak through response timing.
        if not hmac.compare_digest(given.encode(), token.encode()):
            return web.Response(status=401, text="Unauthorized: wrong or missing ?token=.\n")
        raw = await request.content.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            return web.Response(status=400, text="Invalid payload: the body is too large.\n")
        try:
            job, number, phase = notification(json.loads(raw))
        except (UnicodeDecodeError, ValueError):
            return web.Response(status=400, text="Invalid payload: the body is not JSON.\n")
        except BadCall as e:
            return web.Response(status=400, text=f"Invalid payload: {e}\n")
        digest = hashlib.sha256(raw).hexdigest()[:32]
        try:
            fresh = await deps.queue.enqueue(
                HOOK_JOB,
                {"project": job, "number": number, "phase": phase},
                job_id=f"jenkins:{digest}",
            )
        except Exception as e:
            outages.redis_failure(e, "storing a Jenkins notification")
            return web.Response(status=503, text="Cannot store the event yet; retry.\n")
        if outages.down:
            outages.recovered(REDIS)
        if fresh:
            deps.metrics.enqueued(HOOK_JOB).inc()
        else:
            deps.metrics.duplicate("jenkins").inc()
        return web.json_response({"status": "accepted" if fresh else "duplicate"}, status=202)

    return handle
