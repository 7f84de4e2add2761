"""Putting durable jobs on the queue: the web side of bot.jobs, kept apart from the worker.

Jobs are JSON (not arq's default pickle) so that a queue entry can be read by a person and never
executes code on load. This module needs only the store, so that what enqueues (the ack path,
SlackOut's coalesced edits, `Deps`) does not import the worker that runs jobs with `Deps`.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from arq.jobs import serialize_job

from bot.store import Store

# One encoder for every job: json.dumps builds a new encoder per call when given options, which
# shows on the ack path.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def json_serializer(obj: dict[str, Any]) -> bytes:
    return _ENCODER.encode(obj).encode()


def json_deserializer(data: bytes) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(data)
    return result


class JobQueue:
    """Puts jobs on the queue; idempotent by job id."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def enqueue(
        self,
        function: str,
        payload: dict[str, Any],
        *,
        job_id: str | None = None,
        run_at: float | None = None,
    ) -> bool:
        """Queue `function(payload)`; False when a job with this id exists or already ran."""
        now_ms = int(time.time() * 1000)
        run_at_ms = int(run_at * 1000) if run_at is not None else now_ms
        data = serialize_job(function, (payload,), {}, None, now_ms, serializer=json_serializer)
        return await self._store.enqueue_job(job_id or uuid.uuid4().hex, data, run_at_ms)
