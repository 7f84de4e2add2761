"""Docker Engine as a deployer: a service's canary is containers of its image, by version.

- shapes.py: labels, names and the engine's view of a service (`ServiceState`).
- client.py: the docker SDK, connected on first use and run in threads; its errors become
  `IntegrationError("Docker", ...)` there and nowhere else.
- readiness.py: when a new container counts as ready.
- engine.py: `ContainerEngine`, which makes a service run exactly {version: count} containers.
- deployer.py: `DockerDeployer`, the deploys capability's port (bot/deploys/ports.py) over it.

Importing this package does not load the docker SDK; the first call to the engine does.
"""

from integrations.docker.deployer import VERSION_RULE, DockerDeployer, docker_deployers
from integrations.docker.engine import ContainerEngine
from integrations.docker.shapes import (
    LABEL_MANAGED,
    LABEL_SERVICE,
    LABEL_VERSION,
    SYSTEM,
    VERSION_PATTERN,
    ServiceContainer,
    ServiceState,
    engine_address,
)

__all__ = [
    "LABEL_MANAGED",
    "LABEL_SERVICE",
    "LABEL_VERSION",
    "SYSTEM",
    "VERSION_PATTERN",
    "VERSION_RULE",
    "ContainerEngine",
    "DockerDeployer",
    "ServiceContainer",
    "ServiceState",
    "docker_deployers",
    "engine_address",
]
