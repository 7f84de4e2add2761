"""Following one object until it reaches a state: a watch, relisted on 410 Gone, with a poll
fallback when watching is refused or breaks; bounded by the caller's timeout.

`judge(obj)` says whether the object (None: it does not exist) is where the caller wants it:
a result ends the wait, None goes on. Errors of `judge` (a failure the object shows, e.g. an
aborted Rollout) go through to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bot.errors import IntegrationError
from integrations.kubernetes.client import KubeClient
from integrations.kubernetes.errors import Kind

log = logging.getLogger(__name__)

T = TypeVar("T")
WATCH_SECONDS = 30  # one watch request; the next starts from the last resourceVersion seen


@dataclass
class Waited(Generic[T]):
    """How a wait ended: the judge's result (None: the time ran out) and the object last seen."""

    result: T | None
    last: dict[str, Any] | None


async def wait_for(
    client: KubeClient,
    kind: Kind,
    namespace: str,
    name: str,
    judge: Callable[[dict[str, Any] | None], T | None],
    *,
    within: float,
    poll: float = 2.0,
) -> Waited[T]:
    """Follow the object until `judge` returns a result, for at most `within` seconds."""
    follower = _Follower(client, kind, namespace, name, judge, poll)
    try:
        async with asyncio.timeout(within):
            return Waited(await follower.run(time.monotonic() + within), follower.last)
    except TimeoutError:
        return Waited(None, follower.last)


class _Follower(Generic[T]):
    def __init__(
        self,
        client: KubeClient,
        kind: Kind,
        namespace: str,
        name: str,
        judge: Callable[[dict[str, Any] | None], T | None],
        poll: float,
    ) -> None:
        self.client, self.kind, self.namespace, self.name = client, kind, namespace, name
        self.judge, self.poll = judge, poll
        self.last: dict[str, Any] | None = None

    def _seen(self, obj: dict[str, Any] | None) -> T | None:
        self.last = obj
        return self.judge(obj)

    async def run(self, deadline: float) -> T:
        obj, since = await self.client.list(self.kind, self.namespace, self.name)
        if (found := self._seen(obj)) is not None:
            return found
        while True:
            try:
                found, since = await self._watch(since, deadline)
            except IntegrationError as e:
                # Watching refused (a Role without `watch`) or broken: poll from here on.
                log.info(
                    "watching %s %s/%s: %s; polling", self.kind.name, self.namespace, self.name, e
                )
                return await self._poll()
            if found is not None:
                return found
            if not since:  # 410 Gone: what we knew is too old; list again
                obj, since = await self.client.list(self.kind, self.namespace, self.name)
                if (found := self._seen(obj)) is not None:
                    return found

    async def _watch(self, since: str, deadline: float) -> tuple[T | None, str]:
        """One watch request: (the judge's result, the resourceVersion to go on from, or ""
        when the server said 410 Gone)."""
        seconds = max(1, min(WATCH_SECONDS, int(deadline - time.monotonic()) + 1))
        events = self.client.watch(self.kind, self.namespace, self.name, since, seconds)
        async with contextlib.aclosing(events):
            return await self._events(events, since)

    async def _events(
        self, events: AsyncGenerator[tuple[str, dict[str, Any]], None], since: str
    ) -> tuple[T | None, str]:
        async for kind, obj in events:
            if kind == "ERROR":
                if obj.get("code") == 410:
                    return None, ""
                raise IntegrationError("Kubernetes", f"the watch failed: {obj.get('message', '')}")
            version = str((obj.get("metadata") or {}).get("resourceVersion", since))
            since = version or since
            if kind == "BOOKMARK":
                continue
            found = self._seen(None if kind == "DELETED" else obj)
            if found is not None:
                return found, since
        return None, since

    async def _poll(self) -> T:
        while True:
            found = self._seen(await self.client.find(self.kind, self.namespace, self.name))
            if found is not None:
                return found
            await asyncio.sleep(self.poll)
