"""Where a rollout runs: the port the rollout logic uses, and its Docker implementation.

A target makes a step of a rollout true in the world and says what runs. Every call is safe to
repeat (a job may run twice after a crash): `apply` converges on the step, it does not add to
what is there. The GitLab implementation is in bot/deploys/gitlab_target.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bot.config_file import Service
from bot.deploys.rollout import Rollout, canary_count
from integrations.docker.engine import DockerDeployerPort, ServiceContainer, ServiceState


@dataclass(frozen=True)
class Unit:
    """One thing a service runs, for the approval message: a container or a pipeline job."""

    name: str
    version: str
    status: str  # a few words: "running, healthy", "manual", "success"
    ok: bool
    url: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """What runs now, as the engine (or GitLab) reports it."""

    units: tuple[Unit, ...] = ()
    link: str | None = None  # e.g. the pipeline


class DeployTarget(Protocol):
    kind: str  # "docker" | "gitlab", as the YAML's `deployer`

    async def running_versions(self) -> dict[str, int] | None:
        """Ready units per version, or None when the target cannot tell (GitLab)."""
        ...

    async def prepare(self, rollout: Rollout) -> dict[str, Any]:
        """Whatever a rollout needs before its first step (e.g. a pipeline with VERSION); the
        fields to record on the rollout. Called before every step, and again after each
        record, until it returns {}."""
        ...

    async def apply(self, rollout: Rollout, step: int) -> None:
        """Make `rollout.percents[step]` of the service run the new version (idempotent)."""
        ...

    async def revert(self, rollout: Rollout) -> None:
        """Make the service run its stable version only (idempotent)."""
        ...

    async def retry(self, rollout: Rollout) -> None:
        """A person asked (`/deploy promote`) to try the failed change of `rollout` again: undo
        whatever would make `apply` or `revert` fail the same way at once (idempotent)."""
        ...

    async def snapshot(self, rollout: Rollout | None) -> Snapshot:
        """What runs, for the message and `/deploy status`."""
        ...


def plan(rollout: Rollout, step: int, replicas: int) -> dict[str, int]:
    """{version: containers} at `step`: the canary's share of `replicas`, the rest stable."""
    if step < 0:  # no step applied yet: only what ran before
        return {rollout.stable: replicas} if rollout.stable is not None else {}
    percent = rollout.percents[step]
    if rollout.stable is None or rollout.first or percent >= 100:
        return {rollout.version: replicas}
    canary = canary_count(percent, replicas)
    result = {rollout.version: canary}
    if replicas - canary > 0:
        result[rollout.stable] = replicas - canary
    return result


def _unit(c: ServiceContainer) -> Unit:
    words = c.status if c.health is None else f"{c.status}, {c.health}"
    return Unit(name=c.name, version=c.version, status=words, ok=c.ready)


class DockerTarget:
    """A service's containers on a Docker Engine (integrations/docker_deployer.py)."""

    kind = "docker"

    def __init__(
        self, name: str, service: Service, engine: DockerDeployerPort, step_timeout: float
    ) -> None:
        if service.image is None:
            raise ValueError("a docker service needs an image")
        self.name = name
        self.service = service
        self.engine = engine
        self.image = service.image
        self.step_timeout = step_timeout

    async def running_versions(self) -> dict[str, int]:
        return (await self.engine.state(self.name)).ready_versions()

    async def prepare(self, rollout: Rollout) -> dict[str, Any]:
        return {}

    async def apply(self, rollout: Rollout, step: int) -> None:
        await self._scale(plan(rollout, step, self.service.replicas))

    async def retry(self, rollout: Rollout) -> None:
        pass  # applying the step again starts its containers again

    async def revert(self, rollout: Rollout) -> None:
        if rollout.stable is None:
            await self._scale({})  # a first deploy rolled back: nothing ran before
        else:
            await self._scale({rollout.stable: self.service.replicas})

    async def snapshot(self, rollout: Rollout | None) -> Snapshot:
        state = await self.engine.state(self.name)
        return Snapshot(units=tuple(_unit(c) for c in state.containers))

    async def _scale(self, wanted: dict[str, int]) -> ServiceState:
        return await self.engine.scale_to(
            self.name,
            self.image,
            wanted,
            options=self.service.container,
            ready_timeout=self.step_timeout,
        )
