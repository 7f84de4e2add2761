"""A Docker service's part of the YAML file (`services.<name>` with `deployer: docker`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from bot.config_types import Service


class DockerService(Service):
    """Containers of `image`, tagged by version; `replicas` of them at 100%."""

    deployer: Literal["docker"]
    image: str | None = None
    replicas: int = Field(default=1, ge=1, le=100)
    container: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _needs_an_image(self) -> DockerService:
        if not self.image:
            raise ValueError("a docker service needs `image` (e.g. registry.example.com/acme/web)")
        return self

    def destination(self) -> str:
        return f"Docker {self.image}"
