"""What a service is on a Docker Engine: its labels, names and containers, as the bot's types.

A service is the set of containers labelled `opsloop.service=<service>`; each carries the version
it runs in `opsloop.version`. The engine's labels are the truth: nothing is remembered between
calls, so a restarted bot sees what runs. Nothing here loads the docker SDK.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.deploys.ports import IMAGE_TAG

SYSTEM = "Docker"

LABEL_SERVICE = "opsloop.service"
LABEL_VERSION = "opsloop.version"
LABEL_MANAGED = "opsloop.managed"

VERSION_PATTERN = IMAGE_TAG.pattern  # a version is the tag of the service's image
# A service name becomes part of container names: Docker allows [a-zA-Z0-9][a-zA-Z0-9_.-]*.
SERVICE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

DEFAULT_HOST = "unix:///var/run/docker.sock"


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


def engine_url(base_url: str | None) -> str:
    """The engine's address: `base_url`, else DOCKER_HOST, else the local socket."""
    return base_url or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def engine_address(base_url: str | None) -> str:
    """The engine's address as people write it (DOCKER_HOST, else the local socket)."""
    # tcp://user:password@host:port is not a thing Docker supports, but never show one.
    return re.sub(r"//[^/@]*@", "//", engine_url(base_url))


def container_name(service: str, version: str, n: int) -> str:
    return f"opsloop-{service}-{version}-{n}"


def name_index(name: str) -> int:
    """The n of opsloop-<service>-<version>-<n> (0 for a name not of that shape)."""
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def health_from_status(status: str) -> str | None:
    """The health in a container list's Status, e.g. "Up 5 seconds (health: starting)"."""
    if "(health: starting)" in status:
        return "starting"
    if "(unhealthy)" in status:
        return "unhealthy"
    if "(healthy)" in status:
        return "healthy"
    return None


def validate(service: str, plan: Mapping[str, int]) -> None:
    """Refuse names Docker would refuse, before the engine is asked."""
    if not SERVICE_PATTERN.fullmatch(service):
        raise ValueError(f"not a service name Docker accepts in a container name: {service!r}")
    for version, count in plan.items():
        if not VERSION_PATTERN.fullmatch(version):
            raise ValueError(f"not a Docker tag: {version!r}")
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"not a container count for version {version}: {count!r}")
