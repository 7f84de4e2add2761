"""A pod template's containers and images: which container a service deploys, the image a
version runs, and the JSON patch that sets it (naming the container, so a template reordered
meanwhile fails the patch instead of changing another container)."""

from __future__ import annotations

from typing import Any

from bot.errors import IntegrationError
from integrations.kubernetes.errors import SYSTEM


def containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod template's containers (`spec.containers`)."""
    found = ((template.get("spec") or {}).get("containers")) or []
    return [c for c in found if isinstance(c, dict)]


def pick(template: dict[str, Any], wanted: str | None, what: str) -> tuple[int, dict[str, Any]]:
    """The container `wanted` (default: the only one) and its index; an error naming the
    containers there are when it cannot tell."""
    found = containers(template)
    names = ", ".join(str(c.get("name")) for c in found) or "none"
    if wanted is None:
        if len(found) == 1:
            return 0, found[0]
        raise IntegrationError(
            SYSTEM,
            f"{what} has {len(found)} containers ({names}); say which one /deploy sets with "
            "`container:` in the service's settings",
        )
    for index, container in enumerate(found):
        if container.get("name") == wanted:
            return index, container
    raise IntegrationError(SYSTEM, f"{what} has no container `{wanted}` (it has: {names})")


def repository(image: str) -> str:
    """The image without tag or digest: `reg:5000/acme/shop:1.0` -> `reg:5000/acme/shop`."""
    image = image.split("@", 1)[0]
    slash = image.rfind("/")
    colon = image.rfind(":")
    return image[:colon] if colon > slash else image


def tag(image: str) -> str:
    """The version an image runs: its tag (`latest` when it has none), else its digest."""
    name, _, digest = image.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        return name[colon + 1 :]
    return digest or "latest"


def image_for(configured: str | None, current: str, version: str) -> str:
    """The image of `version`: the service's `image`, else the container's own repository."""
    return f"{configured or repository(current)}:{version}"


def set_image(index: int, name: str, image: str) -> list[dict[str, Any]]:
    """A JSON patch (RFC 6902) of a pod template at `/spec/template`: the container at `index`
    must still be called `name`, and its image becomes `image`."""
    path = f"/spec/template/spec/containers/{index}"
    return [
        {"op": "test", "path": f"{path}/name", "value": name},
        {"op": "replace", "path": f"{path}/image", "value": image},
    ]
