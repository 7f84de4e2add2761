"""What the two Kubernetes deployers share: their settings, the version rule, and setting a
container's image on an object's pod template (on a fresh read after a conflict)."""

from __future__ import annotations

from bot.deploys.ports import IMAGE_TAG
from integrations.kubernetes import pods
from integrations.kubernetes.client import JSON_PATCH, KubeClient
from integrations.kubernetes.config import KubernetesService
from integrations.kubernetes.errors import Kind, on_fresh_read


class KubeDeployer:
    """A `deployer: kubernetes` service on one cluster."""

    kind = "kubernetes"

    def __init__(
        self, service: KubernetesService, client: KubeClient, step_timeout: float, poll: float
    ) -> None:
        self.service = service
        self.client = client
        self.namespace = service.namespace
        self.what = service.what
        self.step_timeout = step_timeout
        self.poll = poll

    @staticmethod
    def validate_version(version: str) -> None:
        """A version is the tag of the container's image."""
        IMAGE_TAG.check(version)

    async def _set_image(self, kind: Kind, name: str, version: str) -> None:
        """The deployed container of object `name` runs `version` (nothing sent when it does)."""
        what = f"{kind.name} {self.namespace}/{name}"

        async def attempt() -> None:
            obj = await self.client.get(kind, self.namespace, name)
            template = (obj.get("spec") or {}).get("template") or {}
            index, container = pods.pick(template, self.service.container, what)
            image = pods.image_for(self.service.image, str(container.get("image", "")), version)
            if container.get("image") == image:
                return
            patch = pods.set_image(index, str(container.get("name")), image)
            await self.client.patch(kind, self.namespace, name, patch, content_type=JSON_PATCH)

        await on_fresh_read(attempt)
