"""A service's containers on a Docker Engine, made to run exactly a plan of {version: count}.

`scale_to` starts the missing containers first, waits until each is ready (readiness.py), and
only then removes the surplus. A container that does not become ready is removed with every
other container started by the same call, so the old ones keep serving. What runs is read from
the engine's labels each time (shapes.py), never remembered.

The docker SDK is synchronous: every call runs in a thread through `EngineClient.call`, where
its failures become one `IntegrationError("Docker", ...)` (client.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from typing import Any

from bot.errors import IntegrationError
from integrations.docker.client import EngineClient, sdk_errors
from integrations.docker.readiness import NotReady, wait_ready
from integrations.docker.shapes import (
    LABEL_MANAGED,
    LABEL_SERVICE,
    LABEL_VERSION,
    SYSTEM,
    ServiceContainer,
    ServiceState,
    container_name,
    health_from_status,
    name_index,
    validate,
)

_NAME_ATTEMPTS = 20  # names tried when another container already holds opsloop-<s>-<v>-<n>
# Options from the YAML `container:` that the engine sets itself.
_RESERVED = frozenset({"image", "name", "detach", "remove", "auto_remove"})


class ContainerEngine:
    """Services' containers on one Docker Engine (docker SDK), shared by every Docker service."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        stop_timeout: int = 10,
        settle: float = 0.5,
        pull: bool = True,
    ) -> None:
        """`base_url=None`: DOCKER_HOST or the local socket, as `docker.from_env()` does.

        `stop_timeout`: seconds a removed container gets to exit on SIGTERM. `settle`: seconds a
        container without healthcheck must stay running to count as ready. `pull`: fetch an
        image the engine lacks from its registry before giving up.
        """
        if timeout <= 0 or stop_timeout < 0 or settle < 0:
            raise ValueError("timeout must be positive, stop_timeout and settle not negative")
        self._client = EngineClient(base_url, timeout=timeout)
        self._stop_timeout = stop_timeout
        self._settle = settle
        self._pull = pull
        self._locks: dict[str, asyncio.Lock] = {}

    async def state(self, service: str) -> ServiceState:
        """What runs now for `service`, read from the engine's labels."""
        validate(service, {})
        return await self._client.call(lambda: self._state(service))

    async def scale_to(
        self,
        service: str,
        image: str,
        plan: Mapping[str, int],
        *,
        options: Mapping[str, Any] | None = None,
        ready_timeout: float = 60,
    ) -> ServiceState:
        """Run exactly `plan` = {version: count} containers of `image:version`; new ones first."""
        validate(service, plan)
        run_options = self._run_options(options or {})
        call = self._client.call
        async with self._locks.setdefault(service, asyncio.Lock()):
            current = await call(lambda: self._state(service))
            ready = current.ready_versions()
            wanted = {v: n - ready.get(v, 0) for v, n in plan.items() if n > ready.get(v, 0)}
            if wanted:
                await self._start_new(service, image, current, wanted, run_options, ready_timeout)
                current = await call(lambda: self._state(service))
            surplus = self._surplus(current, plan)
            if surplus:
                await call(lambda: self._remove_all(surplus))
                current = await call(lambda: self._state(service))
            return current

    async def ping(self) -> str:
        """The engine's version, proving that it answers."""
        return await self._client.call(
            lambda: str(self._client.sdk().version().get("Version", "unknown"))
        )

    async def close(self) -> None:
        """Release the connections."""
        await self._client.close()

    # ---- steps of scale_to --------------------------------------------------------------------

    async def _start_new(
        self,
        service: str,
        image: str,
        current: ServiceState,
        wanted: Mapping[str, int],
        run_options: Mapping[str, Any],
        ready_timeout: float,
    ) -> None:
        """Create and start the missing containers, then wait for all; undo them on failure."""
        call = self._client.call
        for version in wanted:
            await call(partial(self._ensure_image, f"{image}:{version}"))
        taken = {c.name for c in current.containers}
        created: list[Any] = []
        try:
            for version, count in wanted.items():
                for _ in range(count):
                    container = await call(
                        partial(self._create, service, image, version, taken, run_options)
                    )
                    created.append(container)
                    taken.add(container.name)
                    await call(container.start)
            await wait_ready(self._client, created, ready_timeout, self._settle)
        except NotReady as e:
            await self._undo(created)
            raise IntegrationError(SYSTEM, e.message) from e
        except BaseException:
            await self._undo(created)
            raise

    async def _undo(self, created: list[Any]) -> None:
        if not created:
            return
        import requests.exceptions  # loaded with the SDK that made `created`

        # The original failure is the one to report; a leftover is never counted as ready and
        # goes with the next scale_to.
        with suppress(sdk_errors().DockerException, requests.exceptions.RequestException):
            await asyncio.shield(asyncio.to_thread(self._remove_all, list(created), 1))

    @staticmethod
    def _surplus(current: ServiceState, plan: Mapping[str, int]) -> list[ServiceContainer]:
        """What to remove so that exactly `plan` runs: never-ready ones first, then newest."""
        doomed: list[ServiceContainer] = []
        by_version: dict[str, list[ServiceContainer]] = {}
        for c in current.containers:
            by_version.setdefault(c.version, []).append(c)
        for version, containers in by_version.items():
            keep = plan.get(version, 0)
            ordered = sorted(containers, key=lambda c: (not c.ready, name_index(c.name)))
            doomed.extend(c for c in ordered[keep:])
            doomed.extend(c for c in ordered[:keep] if not c.ready)
        return doomed

    @staticmethod
    def _run_options(options: Mapping[str, Any]) -> dict[str, Any]:
        """The YAML `container:` as docker SDK keywords: `env` is `environment`."""
        result: dict[str, Any] = {}
        for key, value in options.items():
            if key in _RESERVED:
                raise ValueError(f"container option {key} is set by opsloop")
            result["environment" if key == "env" else key] = value
        result.setdefault("restart_policy", {"Name": "unless-stopped"})
        return result

    # ---- synchronous SDK calls (run in a thread) ----------------------------------------------

    def _state(self, service: str) -> ServiceState:
        # One list call (the low-level API): the SDK's containers.list() inspects each container
        # afterwards and fails with "No such container" when one is removed in between.
        found = self._client.sdk().api.containers(
            all=True, filters={"label": [f"{LABEL_SERVICE}={service}"]}
        )
        containers = []
        for c in found:
            labels = c.get("Labels") or {}
            names = c.get("Names") or [c["Id"][:12]]
            containers.append(
                ServiceContainer(
                    id=c["Id"],
                    name=str(names[0]).lstrip("/"),
                    service=service,
                    version=str(labels.get(LABEL_VERSION, "")),
                    status=str(c.get("State", "unknown")),
                    health=health_from_status(str(c.get("Status", ""))),
                )
            )
        containers.sort(key=lambda c: (c.version, name_index(c.name), c.name))
        return ServiceState(service, tuple(containers))

    def _ensure_image(self, reference: str) -> None:
        images = self._client.sdk().images
        errors = sdk_errors()
        try:
            images.get(reference)
            return
        except errors.ImageNotFound as e:
            if not self._pull:
                raise IntegrationError(SYSTEM, f"image {reference} was not found") from e
        repository, tag = reference.rsplit(":", 1)
        try:
            images.pull(repository, tag=tag)
        except errors.APIError as e:
            raise IntegrationError(SYSTEM, f"image {reference} was not found") from e

    def _create(
        self, service: str, image: str, version: str, taken: set[str], options: Mapping[str, Any]
    ) -> Any:
        labels = {
            **dict(options.get("labels") or {}),
            LABEL_SERVICE: service,
            LABEL_VERSION: version,
            LABEL_MANAGED: "1",
        }
        extra = {k: v for k, v in options.items() if k != "labels"}
        containers = self._client.sdk().containers
        n = 1
        for _ in range(_NAME_ATTEMPTS):
            while container_name(service, version, n) in taken:
                n += 1
            name = container_name(service, version, n)
            try:
                return containers.create(
                    f"{image}:{version}", name=name, labels=labels, detach=True, **extra
                )
            except sdk_errors().APIError as e:
                if e.status_code != 409:  # 409: the name is held by a container not ours
                    raise
                taken.add(name)
        raise IntegrationError(SYSTEM, f"no free container name for {service} {version}")

    def _remove_all(self, containers: list[Any], stop_timeout: int | None = None) -> None:
        """Stop (SIGTERM, SIGKILL after the stop timeout) and remove, all in parallel."""
        wait = self._stop_timeout if stop_timeout is None else stop_timeout
        ids = [c.id for c in containers]
        if not ids:
            return
        with ThreadPoolExecutor(max_workers=min(8, len(ids))) as pool:
            for done in [pool.submit(self._remove_one, cid, wait) for cid in ids]:
                done.result()

    def _remove_one(self, cid: str, wait: int) -> None:
        api = self._client.sdk().api
        try:
            api.stop(cid, timeout=wait)
            api.remove_container(cid, force=True)
        except sdk_errors().NotFound:
            pass  # already gone
