"""When a new container counts as ready, and the words for one that never does.

Ready: running, and healthy where the image has a healthcheck; a container without one must
stay running for `settle` seconds. A container that exits, restarts or turns unhealthy fails at
once, with the last line it logged (or its healthcheck said), so a person sees why.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from bot.errors import IntegrationError
from integrations.docker.client import EngineClient, clip

POLL = 0.2  # seconds between readiness checks


class NotReady(Exception):
    """A new container failed to become ready; `message` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def health(attrs: Mapping[str, Any]) -> str | None:
    """The health in a container's inspect data; None without a healthcheck."""
    found = (attrs.get("State") or {}).get("Health")
    status = found.get("Status") if isinstance(found, dict) else None
    return status if isinstance(status, str) and status != "none" else None


def _last_health_output(attrs: Mapping[str, Any]) -> str:
    log = ((attrs.get("State") or {}).get("Health") or {}).get("Log") or []
    return clip(str(log[-1].get("Output", "")), 200) if log else ""


async def last_log_line(client: EngineClient, container: Any) -> str:
    """The container's last log line, or "" when Docker cannot say."""
    try:
        raw = await client.call(lambda: container.logs(tail=1))
    except IntegrationError:
        return ""
    return clip(raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw), 200)


async def _failure(client: EngineClient, container: Any) -> str | None:
    """Why the container will never be ready, or None while it still may be."""
    attrs = container.attrs
    state = attrs.get("State") or {}
    status = str(state.get("Status", "unknown"))
    # With a restart policy a crashing container flips between restarting and running: any
    # restart since it was created counts as a failure.
    if status in ("exited", "dead", "restarting") or state.get("RestartCount", 0):
        line = await last_log_line(client, container)
        code = state.get("ExitCode")
        detail = (
            "it keeps restarting"
            if status in ("restarting", "running")
            else f"it is {status} (exit code {code})"
        )
        return (
            f"container {container.name} ({attrs['Config']['Image']}) did not start:"
            f" {detail}" + (f"; last log line: {line}" if line else "")
        )
    if health(attrs) == "unhealthy":
        line = _last_health_output(attrs)
        return f"container {container.name} is unhealthy" + (
            f"; last check said: {line}" if line else ""
        )
    return None


async def wait_ready(
    client: EngineClient, containers: list[Any], ready_timeout: float, settle: float
) -> None:
    """Return once every container is ready; NotReady at the first that cannot be."""
    deadline = time.monotonic() + ready_timeout
    running_since: dict[str, float] = {}
    pending = list(containers)
    while pending:
        still: list[Any] = []
        for container in pending:
            await client.call(container.reload)
            failure = await _failure(client, container)
            if failure is not None:
                raise NotReady(failure)
            status = str((container.attrs.get("State") or {}).get("Status", "unknown"))
            checked = health(container.attrs)
            now = time.monotonic()
            if status == "running":
                running_since.setdefault(container.id, now)
            if status == "running" and (
                checked == "healthy"
                or (checked is None and now - running_since[container.id] >= settle)
            ):
                continue
            still.append(container)
        pending = still
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise NotReady(await _too_slow(client, pending[0], ready_timeout))
        await asyncio.sleep(POLL)


async def _too_slow(client: EngineClient, container: Any, ready_timeout: float) -> str:
    checked = health(container.attrs)
    status = container.status
    what = f"{status}, health {checked}" if checked else status
    line = await last_log_line(client, container)
    return f"container {container.name} was not ready within {ready_timeout:g} s (it is {what})" + (
        f"; last log line: {line}" if line else ""
    )
