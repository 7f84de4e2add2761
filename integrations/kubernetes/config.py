"""A Kubernetes service's part of the YAML file (`services.<name>` with `deployer: kubernetes`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from bot.config_types import Service

# A Kubernetes object name (RFC 1123 subdomain) and a namespace or container name (RFC 1123
# label): checked at start-up, so a typo is named there and not by the API server later.
_OBJECT = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
CANARY_SUFFIX = "-canary"


class KubernetesService(Service):
    """An Argo Rollout (`rollout:`), whose steps Argo runs and opsloop approves, or a plain
    Deployment (`deployment:`), whose canary opsloop runs as Deployment `<name>-canary`."""

    deployer: Literal["kubernetes"]
    namespace: str = "default"
    rollout: str | None = None
    deployment: str | None = None
    container: str | None = None  # default: the pod template's only container
    image: str | None = None  # default: the container's image now, with the new tag
    # Pods at 100% for a Deployment; default: the stable Deployment's count when a rollout starts.
    replicas: int | None = Field(default=None, ge=1, le=1000)

    @model_validator(mode="after")
    def _one_object(self) -> KubernetesService:
        if (self.rollout is None) == (self.deployment is None):
            raise ValueError(
                "a kubernetes service names exactly one of `rollout` (an Argo Rollout) or "
                "`deployment` (a plain Deployment)"
            )
        if not _LABEL.fullmatch(self.namespace):
            raise ValueError(f"`namespace` {self.namespace!r} is not a Kubernetes namespace name")
        name = self.object_name
        if not _OBJECT.fullmatch(name) or len(name) + len(CANARY_SUFFIX) > 253:
            raise ValueError(f"{name!r} is not a Kubernetes object name")
        if self.container is not None and not _LABEL.fullmatch(self.container):
            raise ValueError(f"`container` {self.container!r} is not a Kubernetes container name")
        if self.rollout is not None:
            if self.replicas is not None:
                raise ValueError("`replicas` is the Rollout's own (spec.replicas), not opsloop's")
            if len(self.steps) != 1:
                raise ValueError(
                    "a Rollout's steps are its own (spec.strategy.canary.steps); "
                    "leave `steps` out of a `rollout:` service"
                )
        return self

    @property
    def object_name(self) -> str:
        """The Rollout's or the stable Deployment's name."""
        return self.rollout or self.deployment or ""

    @property
    def what(self) -> str:
        """The object in words, e.g. "Rollout shop/shop"."""
        kind = "Rollout" if self.rollout is not None else "Deployment"
        return f"{kind} {self.namespace}/{self.object_name}"

    def destination(self) -> str:
        return f"Kubernetes {self.what}"
