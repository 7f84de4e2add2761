"""Docker Engine as a deployer: the port the rollout logic uses and its docker SDK adapter.

A service is the set of containers labelled `opsloop.service=<service>`; each carries the version
it runs in `opsloop.version`. The engine's labels are the truth: nothing is remembered between
calls, so a restarted bot sees what runs. `scale_to` makes the service run exactly a plan of
`{version: count}` containers: it starts the missing ones first, waits until each is running
(and healthy where the image has a healthcheck), and only then removes the surplus. A container
that does not become ready is removed with every other container started by the same call, so
the old ones keep serving.

The docker SDK is synchronous: every call runs through `asyncio.to_thread`. Every failure
becomes one `IntegrationError("Docker", ...)` whose message can be shown to a Slack user.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

import docker
import docker.errors
import requests.exceptions

from bot.errors import IntegrationError

SYSTEM = "Docker"

LABEL_SERVICE = "opsloop.service"
LABEL_VERSION = "opsloop.version"
LABEL_MANAGED = "opsloop.managed"

VERSION_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# A service name becomes part of container names: Docker allows [a-zA-Z0-9][a-zA-Z0-9_.-]*.
SERVICE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

_POLL = 0.2  # seconds between readiness checks
_MAX_REASON = 300  # characters of Docker's own explanation passed on to a person
_NAME_ATTEMPTS = 20  # names tried when another container already holds opsloop-<s>-<v>-<n>
# Options from the YAML `container:` that the adapter sets itself.
_RESERVED = frozenset({"image", "name", "detach", "remove", "auto_remove"})

T = TypeVar("T")


@dataclass(frozen=True)
class ServiceContainer:
    """One container of a service, as the engine reports it."""

    id: str
    name: str
    service: str
    version: str
    status: str  # Docker's state: "created", "running", "restarting", "exited", ...
    health: str | None  # "healthy" | "unhealthy" | "starting"; None without a healthcheck

    @property
    def ready(self) -> bool:
        """Running, and healthy where the image has a healthcheck."""
        return self.status == "running" and self.health in (None, "healthy")


@dataclass(frozen=True)
class ServiceState:
    """Every container labelled with the service, running or not, ordered by version and name."""

    service: str
    containers: tuple[ServiceContainer, ...]

    def versions(self) -> dict[str, int]:
        """Running containers per version (stopped ones are not counted)."""
        counts: dict[str, int] = {}
        for c in self.containers:
            if c.status == "running":
                counts[c.version] = counts.get(c.version, 0) + 1
        return counts

    def ready_versions(self) -> dict[str, int]:
        """Ready containers (running, healthy where checked) per version."""
        counts: dict[str, int] = {}
        for c in self.containers:
            if c.ready:
                counts[c.version] = counts.get(c.version, 0) + 1
        return counts


class DockerDeployerPort(Protocol):
    """What the rollout logic needs from a container engine."""

    async def state(self, service: str) -> ServiceState:
        """What runs now for `service`, read from the engine's labels."""
        ...

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
        ...

    async def ping(self) -> str:
        """The engine's version, proving that it answers."""
        ...

    async def close(self) -> None:
        """Release the connections."""
        ...


class _NotReady(Exception):
    """A new container failed to become ready; `message` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def engine_address(base_url: str | None) -> str:
    """The engine's address as people write it (DOCKER_HOST, else the local socket)."""
    url = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    # tcp://user:password@host:port is not a thing Docker supports, but never show one.
    return re.sub(r"//[^/@]*@", "//", url)


def _reason(error: docker.errors.APIError) -> str:
    text = error.explanation if isinstance(error.explanation, str) else str(error)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def _clip(text: str, limit: int = _MAX_REASON) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _last_health_output(attrs: Mapping[str, Any]) -> str:
    log = ((attrs.get("State") or {}).get("Health") or {}).get("Log") or []
    return _clip(str(log[-1].get("Output", "")), 200) if log else ""


def _health(attrs: Mapping[str, Any]) -> str | None:
    health = (attrs.get("State") or {}).get("Health")
    status = health.get("Status") if isinstance(health, dict) else None
    return status if isinstance(status, str) and status != "none" else None


def _health_from_status(status: str) -> str | None:
    """The health in a container list's Status, e.g. "Up 5 seconds (health: starting)"."""
    if "(health: starting)" in status:
        return "starting"
    if "(unhealthy)" in status:
        return "unhealthy"
    if "(healthy)" in status:
        return "healthy"
    return None


def _index(name: str) -> int:
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _validate(service: str, plan: Mapping[str, int]) -> None:
    if not SERVICE_PATTERN.fullmatch(service):
        raise ValueError(f"not a service name Docker accepts in a container name: {service!r}")
    for version, count in plan.items():
        if not VERSION_PATTERN.fullmatch(version):
            raise ValueError(f"not a Docker tag: {version!r}")
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"not a container count for version {version}: {count!r}")


class DockerDeployer:
    """`DockerDeployerPort` over the Docker Engine API (docker SDK)."""

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
        self._base_url = base_url
        self._where = engine_address(base_url)
        self._timeout = timeout
        self._stop_timeout = stop_timeout
        self._settle = settle
        self._pull = pull
        self._client: Any = None  # docker.DockerClient, made on first use
        self._locks: dict[str, asyncio.Lock] = {}

    # ---- the port ---------------------------------------------------------------------------

    async def state(self, service: str) -> ServiceState:
        _validate(service, {})
        return await self._call(lambda: self._state(service))

    async def scale_to(
        self,
        service: str,
        image: str,
        plan: Mapping[str, int],
        *,
        options: Mapping[str, Any] | None = None,
        ready_timeout: float = 60,
    ) -> ServiceState:
        _validate(service, plan)
        run_options = self._run_options(options or {})
        lock = self._locks.setdefault(service, asyncio.Lock())
        async with lock:
            current = await self._call(lambda: self._state(service))
            ready = current.ready_versions()
            wanted = {v: n - ready.get(v, 0) for v, n in plan.items() if n > ready.get(v, 0)}
            if wanted:
                await self._start_new(service, image, current, wanted, run_options, ready_timeout)
                current = await self._call(lambda: self._state(service))
            surplus = self._surplus(current, plan)
            if surplus:
                await self._call(lambda: self._remove_all(surplus))
                current = await self._call(lambda: self._state(service))
            return current

    async def ping(self) -> str:
        return await self._call(lambda: str(self._api().version().get("Version", "unknown")))

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await asyncio.to_thread(client.close)

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
        for version in wanted:
            await self._call(partial(self._ensure_image, f"{image}:{version}"))
        taken = {c.name for c in current.containers}
        created: list[Any] = []
        try:
            for version, count in wanted.items():
                for _ in range(count):
                    container = await self._call(
                        partial(self._create, service, image, version, taken, run_options)
                    )
                    created.append(container)
                    taken.add(container.name)
                    await self._call(container.start)
            await self._wait_ready(created, ready_timeout)
        except _NotReady as e:
            await self._undo(created)
            raise IntegrationError(SYSTEM, e.message) from e
        except BaseException:
            await self._undo(created)
            raise

    async def _undo(self, created: list[Any]) -> None:
        if not created:
            return
        # The original failure is the one to report; a leftover is never counted as ready and
        # goes with the next scale_to.
        with suppress(docker.errors.DockerException, requests.exceptions.RequestException):
            await asyncio.shield(asyncio.to_thread(self._remove_all, list(created), 1))

    async def _wait_ready(self, containers: list[Any], ready_timeout: float) -> None:
        deadline = time.monotonic() + ready_timeout
        running_since: dict[str, float] = {}
        pending = list(containers)
        while pending:
            still: list[Any] = []
            for container in pending:
                await self._call(container.reload)
                attrs = container.attrs
                state = attrs.get("State") or {}
                status = str(state.get("Status", "unknown"))
                health = _health(attrs)
                # With a restart policy a crashing container flips between restarting and
                # running: any restart since it was created counts as a failure.
                if status in ("exited", "dead", "restarting") or state.get("RestartCount", 0):
                    line = await self._last_log_line(container)
                    code = state.get("ExitCode")
                    detail = (
                        "it keeps restarting"
                        if status in ("restarting", "running")
                        else f"it is {status} (exit code {code})"
                    )
                    raise _NotReady(
                        f"container {container.name} ({attrs['Config']['Image']}) did not start:"
                        f" {detail}" + (f"; last log line: {line}" if line else "")
                    )
                if health == "unhealthy":
                    line = _last_health_output(attrs)
                    raise _NotReady(
                        f"container {container.name} is unhealthy"
                        + (f"; last check said: {line}" if line else "")
                    )
                now = time.monotonic()
                if status == "running":
                    running_since.setdefault(container.id, now)
                if status == "running" and (
                    health == "healthy"
                    or (health is None and now - running_since[container.id] >= self._settle)
                ):
                    continue
                still.append(container)
            pending = still
            if not pending:
                return
            if time.monotonic() >= deadline:
                container = pending[0]
                health = _health(container.attrs)
                status = container.status
                what = f"{status}, health {health}" if health else status
                line = await self._last_log_line(container)
                raise _NotReady(
                    f"container {container.name} was not ready within {ready_timeout:g} s"
                    f" (it is {what})" + (f"; last log line: {line}" if line else "")
                )
            await asyncio.sleep(_POLL)

    async def _last_log_line(self, container: Any) -> str:
        try:
            raw = await self._call(lambda: container.logs(tail=1))
        except IntegrationError:
            return ""
        return _clip(raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw), 200)

    @staticmethod
    def _surplus(current: ServiceState, plan: Mapping[str, int]) -> list[ServiceContainer]:
        """What to remove so that exactly `plan` runs: never-ready ones first, then newest."""
        doomed: list[ServiceContainer] = []
        by_version: dict[str, list[ServiceContainer]] = {}
        for c in current.containers:
            by_version.setdefault(c.version, []).append(c)
        for version, containers in by_version.items():
            keep = plan.get(version, 0)
            ordered = sorted(containers, key=lambda c: (not c.ready, _index(c.name)))
            doomed.extend(c for c in ordered[keep:])
            doomed.extend(c for c in ordered[:keep] if not c.ready)
        return doomed

    # ---- synchronous SDK calls (run in a thread) ----------------------------------------------

    def _api(self) -> Any:
        if self._client is None:
            self._probe()
            if self._base_url is None:
                self._client = docker.from_env(timeout=int(self._timeout))
            else:
                self._client = docker.DockerClient(
                    base_url=self._base_url, timeout=int(self._timeout)
                )
        return self._client

    def _probe(self) -> None:
        """Connect to a unix socket once before the SDK does.

        docker 7's unix transport leaks its socket when the connect fails (no socket file,
        nobody listening), which surfaces later as a ResourceWarning; this probe closes its own.
        """
        url = self._base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        if not url.startswith("unix://"):
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(self._timeout)
            try:
                probe.connect(url[len("unix://") :])
            except OSError as e:
                raise requests.exceptions.ConnectionError(str(e)) from e

    def _state(self, service: str) -> ServiceState:
        # One list call (the low-level API): the SDK's containers.list() inspects each container
        # afterwards and fails with "No such container" when one is removed in between.
        found = self._api().api.containers(
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
                    health=_health_from_status(str(c.get("Status", ""))),
                )
            )
        containers.sort(key=lambda c: (c.version, _index(c.name), c.name))
        return ServiceState(service, tuple(containers))

    def _ensure_image(self, reference: str) -> None:
        try:
            self._api().images.get(reference)
            return
        except docker.errors.ImageNotFound as e:
            if not self._pull:
                raise IntegrationError(SYSTEM, f"image {reference} was not found") from e
        repository, tag = reference.rsplit(":", 1)
        try:
            self._api().images.pull(repository, tag=tag)
        except docker.errors.APIError as e:
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
        n = 1
        for _ in range(_NAME_ATTEMPTS):
            while f"opsloop-{service}-{version}-{n}" in taken:
                n += 1
            name = f"opsloop-{service}-{version}-{n}"
            try:
                return self._api().containers.create(
                    f"{image}:{version}", name=name, labels=labels, detach=True, **extra
                )
            except docker.errors.APIError as e:
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
        api = self._api().api
        try:
            api.stop(cid, timeout=wait)
            api.remove_container(cid, force=True)
        except docker.errors.NotFound:
            pass  # already gone

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

    # ---- errors -------------------------------------------------------------------------------

    async def _call(self, fn: Callable[[], T]) -> T:
        """Run one synchronous SDK step in a thread; turn its failure into IntegrationError."""
        try:
            return await asyncio.to_thread(fn)
        except IntegrationError:
            raise
        except docker.errors.ImageNotFound as e:
            raise IntegrationError(SYSTEM, f"image was not found: {_reason(e)}") from e
        except docker.errors.APIError as e:
            retryable = e.status_code is not None and e.status_code >= 500
            message = f"Docker answered: {_reason(e)}"
            raise IntegrationError(SYSTEM, message, retryable=retryable) from e
        except requests.exceptions.ReadTimeout as e:
            message = f"Docker at {self._where} did not answer within {self._timeout:g} s"
            raise IntegrationError(SYSTEM, message, retryable=True) from e
        except requests.exceptions.ConnectionError as e:
            await self.close()  # the next call connects (and probes) afresh
            message = f"Docker at {self._where} is unreachable"
            raise IntegrationError(SYSTEM, message, retryable=True) from e
        except docker.errors.DockerException as e:
            if "server API version" in str(e) or self._client is None:
                # The client could not even ask the engine for its API version.
                await self.close()
                message = f"Docker at {self._where} is unreachable"
                raise IntegrationError(SYSTEM, message, retryable=True) from e
            raise IntegrationError(SYSTEM, f"the Docker client refused: {_clip(str(e))}") from e
        except TypeError as e:  # an option containers.create does not know
            raise IntegrationError(SYSTEM, f"a container option was not accepted: {e}") from e


__all__ = [
    "LABEL_MANAGED",
    "LABEL_SERVICE",
    "LABEL_VERSION",
    "SYSTEM",
    "VERSION_PATTERN",
    "DockerDeployer",
    "DockerDeployerPort",
    "ServiceContainer",
    "ServiceState",
    "engine_address",
]
