"""Docker as the wiring sees it: used when a service says `deployer: docker`; its deployers run
containers on the engine at OPSLOOP_DOCKER_HOST (else DOCKER_HOST, else the local socket)."""

from __future__ import annotations

from bot.config_file import OpsConfig
from bot.deploys.ports import IMAGE_TAG
from bot.plugins import DeployerKind, Plugin, Provided
from bot.settings import Settings
from integrations.docker.config import DockerService

KIND = "docker"
CHECK_TIMEOUT = 5  # seconds the engine's HTTP calls may take for `opsloop check`


def _configured(settings: Settings, config: OpsConfig) -> bool:
    return any(s.deployer == KIND for s in config.services.values())


def _start(settings: Settings, config: OpsConfig) -> Provided:
    # The engine modules load the docker SDK on their first call, not on import; imported here
    # all the same, so that a process without Docker services never reads them.
    from integrations.docker.deployer import docker_deployers
    from integrations.docker.engine import ContainerEngine

    engine = ContainerEngine(settings.docker_host)

    async def check() -> str:
        probe = ContainerEngine(settings.docker_host, timeout=CHECK_TIMEOUT)
        try:
            return f"Docker Engine {await probe.ping()} answers"
        finally:
            await probe.close()

    return Provided(
        status="Docker used by a service",
        check=check,
        deployers={KIND: docker_deployers(engine)},
        close=engine.close,
    )


PLUGIN = Plugin(
    name="docker",
    configured=_configured,
    start=_start,
    status_when_off="Docker not used",
    deployers=(
        DeployerKind(
            name=KIND,
            model=DockerService,
            versions=IMAGE_TAG,
            not_configured="Docker is not configured for opsloop (OPSLOOP_DOCKER_HOST).",
        ),
    ),
)
