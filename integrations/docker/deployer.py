"""The Docker deployer: one service's rollouts as containers on a Docker Engine.

Step k of a rollout is the plan `bot.deploys.ports.plan` gives for it (the canary's share of
`replicas`, the rest stable), run by `ContainerEngine.scale_to`; revert runs the stable version
alone. Nothing is remembered here: what runs is read from the engine's labels.
"""

from __future__ import annotations

from typing import Any

from bot.deploys.ports import (
    IMAGE_TAG,
    Deployer,
    DeployerFactory,
    RolloutView,
    ServiceSettings,
    Snapshot,
    Unit,
    plan,
)
from integrations.docker.config import DockerService
from integrations.docker.engine import ContainerEngine
from integrations.docker.shapes import ServiceContainer, ServiceState


def _unit(c: ServiceContainer) -> Unit:
    words = c.status if c.health is None else f"{c.status}, {c.health}"
    return Unit(name=c.name, version=c.version, status=words, ok=c.ready)


class DockerDeployer:
    """A service's containers on a Docker Engine."""

    kind = "docker"

    def __init__(
        self, name: str, service: ServiceSettings, engine: ContainerEngine, step_timeout: float
    ) -> None:
        if not isinstance(service, DockerService) or service.image is None:
            raise ValueError("a docker service needs an image")
        self.name = name
        self.service = service
        self.engine = engine
        self.image = service.image
        self.step_timeout = step_timeout

    @staticmethod
    def validate_version(version: str) -> None:
        """A version is the tag of the service's image."""
        IMAGE_TAG.check(version)

    async def running_versions(self) -> dict[str, int]:
        return (await self.engine.state(self.name)).ready_versions()

    def planned(self, rollout: RolloutView, step: int) -> dict[str, int]:
        wanted = plan(rollout, step, self.service.replicas)
        return {version: n for version, n in wanted.items() if n}

    async def prepare(self, rollout: RolloutView) -> dict[str, Any]:
        return {}

    async def apply(self, rollout: RolloutView, step: int) -> None:
        await self._scale(plan(rollout, step, self.service.replicas))

    async def retry(self, rollout: RolloutView) -> None:
        pass  # applying the step again starts its containers again

    async def revert(self, rollout: RolloutView) -> None:
        if rollout.stable is None:
            await self._scale({})  # a first deploy rolled back: nothing ran before
        else:
            await self._scale({rollout.stable: self.service.replicas})

    async def snapshot(self, rollout: RolloutView | None) -> Snapshot:
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


def docker_deployers(engine: ContainerEngine) -> DeployerFactory:
    """Makes the Docker deployer of each Docker service, all on `engine`."""

    def make(name: str, service: ServiceSettings, step_timeout: float) -> Deployer:
        return DockerDeployer(name, service, engine, step_timeout)

    return make
