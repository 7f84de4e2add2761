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
        await set_image_tag(
            self.client,
            kind,
            self.namespace,
            name,
            version,
            container=self.service.container,
            repository=self.service.image,
        )


async def set_image_tag(
    client: KubeClient,
    kind: Kind,
    namespace: str,
    name: str,
    version: str,
    *,
    container: str | None = None,
    repository: str | None = None,
) -> bool:
    """Make `container` (default: the only one) of the object's pod template run `version`:
    `<repository>:<version>`, the repository defaulting to the container's own. A JSON patch
    naming the container, sent only when the image differs, again on a fresh read after a
    conflict; True when it was sent. Public: the Flagger gate sets a target's image with it."""
    what = f"{kind.name} {namespace}/{name}"

    async def attempt() -> bool:
        obj = await client.get(kind, namespace, name)
        template = (obj.get("spec") or {}).get("template") or {}
        index, found = pods.pick(template, container, what)
        image = pods.image_for(repository, str(found.get("image", "")), version)
        if found.get("image") == image:
            return False
        patch = pods.set_image(index, str(found.get("name")), image)
        await client.patch(kind, namespace, name, patch, content_type=JSON_PATCH)
        return True

    return await on_fresh_read(attempt)
