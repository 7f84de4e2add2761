"""The Notification plugin, as the emulated Jenkins runs it: each build's phases (QUEUED,
STARTED, COMPLETED, FINALIZED) posted as JSON to every endpoint configured, while serving.

Its body: `{name, display_name, url, build: {full_url, number, queue_id, timestamp, phase,
status, url, scm, parameters, log, artifacts}}`, `url`s relative to Jenkins' root.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp

from .shapes import job_url
from .state import JSON, Build, JenkinsState


@dataclass
class Delivery:
    endpoint: str
    body: JSON
    status: int | None  # None: no answer


@dataclass
class Notifier:
    endpoints: list[str] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    _sent: set[tuple[str, int, str]] = field(default_factory=set)

    def due(self, state: JenkinsState, base: str) -> list[JSON]:
        """The bodies of phases reached and not yet sent."""
        bodies = []
        for build in sorted(state.builds.values(), key=lambda b: (b.job, b.number)):
            building, result, _ = state.result(build)
            phases = ["STARTED"] if building else ["STARTED", "COMPLETED", "FINALIZED"]
            for phase in phases:
                key = (build.job, build.number, phase)
                if key not in self._sent:
                    self._sent.add(key)
                    bodies.append(body(build, base, phase, result))
        return bodies


def body(build: Build, base: str, phase: str, result: str | None) -> JSON:
    relative = job_url("", build.job).lstrip("/")
    build_json: JSON = {
        "full_url": f"{job_url(base, build.job)}{build.number}/",
        "number": build.number,
        "queue_id": build.queue_id,
        "timestamp": int(build.started_wall * 1000),
        "phase": phase,
        "url": f"{relative}{build.number}/",
        "scm": {"commit": build.sha, "branch": build.parameters.get("BRANCH", "")},
        "parameters": dict(build.parameters),
        "log": "",
        "artifacts": {},
    }
    if phase != "STARTED" and result is not None:
        build_json["status"] = result
    return {
        "name": build.job.rsplit("/", 1)[-1],
        "display_name": build.job.rsplit("/", 1)[-1],
        "url": relative,
        "build": build_json,
    }


async def deliver(notifier: Notifier, bodies: list[JSON]) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for payload in bodies:
            for endpoint in notifier.endpoints:
                status: int | None = None
                try:
                    async with session.post(endpoint, json=payload) as answer:
                        status = answer.status
                except (aiohttp.ClientError, TimeoutError):
                    pass
                notifier.deliveries.append(Delivery(endpoint, payload, status))


async def keep_notifying(notifier: Notifier, state: JenkinsState, base: str) -> None:
    """Sends what is due every tenth of a step, until cancelled."""
    while True:
        state.settle()
        bodies = notifier.due(state, base)
        if bodies and notifier.endpoints:
            await deliver(notifier, bodies)
        await asyncio.sleep(max(state.step_seconds / 10, 0.02))
