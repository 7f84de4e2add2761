"""Docker Engine as a deployer: a service's canary is containers of its image, by version.

- plugin.py: what the bot wires: Docker is used when a service says `deployer: docker`.
- config.py: a `deployer: docker` service's YAML (DockerService).
- shapes.py: labels, names and the engine's view of a service (`ServiceState`).
- client.py: the docker SDK, connected on first use and run in threads; its errors become
  `IntegrationError("Docker", ...)` there and nowhere else.
- readiness.py: when a new container counts as ready.
- engine.py: `ContainerEngine`, which makes a service run exactly {version: count} containers.
- deployer.py: `DockerDeployer`, the deploys capability's port (bot/deploys/ports.py) over it.

Importing any of these does not load the docker SDK; the first call to the engine does.
"""
