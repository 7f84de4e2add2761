"""Setting the image of a Flagger Canary's target: what `/deploy checkout 2.0` does when the
service has `image` and a cluster is configured. Flagger notices the target's new pod spec,
starts a canary of it, and asks opsloop at its gates.

The Canary (`flagger.app/v1beta1`) names its target in `spec.targetRef` ({kind, name}); the
target's container is the one whose image repository is the service's `image`, else its only
container. The image is set by integrations/kubernetes/base.py's `set_image_tag` (a JSON patch
naming the container, sent only when the image differs, again on a fresh read after a
conflict), so running this twice sends one patch.
"""

from __future__ import annotations

from typing import Any

from bot.errors import IntegrationError
from integrations.kubernetes import pods
from integrations.kubernetes.base import set_image_tag
from integrations.kubernetes.client import KubeClient
from integrations.kubernetes.errors import DEPLOYMENT, SYSTEM, Kind

CANARY = Kind("Canary", "flagger.app", "v1beta1", "canaries")
TARGETS = {DEPLOYMENT.name: DEPLOYMENT}  # what opsloop sets the image of (Flagger's default)


async def target_of(client: KubeClient, namespace: str, canary: str) -> tuple[Kind, str]:
    """The kind and name of Canary `namespace/canary`'s target (`spec.targetRef`)."""
    obj = await client.get(CANARY, namespace, canary)
    ref = (obj.get("spec") or {}).get("targetRef") or {}
    kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
    what = f"Canary {namespace}/{canary}"
    if not name:
        raise IntegrationError(SYSTEM, f"{what} has no `spec.targetRef.name`")
    if kind not in TARGETS:
        raise IntegrationError(
            SYSTEM,
            f"{what} targets {kind or 'an unnamed kind'} {name}; opsloop sets the image of a "
            "Deployment target only",
        )
    return TARGETS[kind], name


def container_for(template: dict[str, Any], repository: str, what: str) -> str:
    """The container that runs `repository` (any tag), else the only one; an error naming
    the containers when neither tells."""
    found = pods.containers(template)
    running = [c for c in found if pods.repository(str(c.get("image", ""))) == repository]
    if len(running) == 1:
        return str(running[0].get("name"))
    if not running and len(found) == 1:
        return str(found[0].get("name"))
    names = ", ".join(f"{c.get('name')} ({c.get('image')})" for c in found) or "none"
    runs = "several run" if running else "none runs"
    raise IntegrationError(
        SYSTEM,
        f"{what} has {len(found)} containers ({names}) and {runs} {repository}, so opsloop "
        "cannot tell which one /deploy sets",
    )


async def set_target_image(
    client: KubeClient, namespace: str, canary: str, repository: str, version: str
) -> str:
    """Make the Canary's target run `<repository>:<version>`; what to tell the person."""
    kind, name = await target_of(client, namespace, canary)
    what = f"{kind.name} {namespace}/{name}"
    target = await client.get(kind, namespace, name)
    container = container_for((target.get("spec") or {}).get("template") or {}, repository, what)
    image = f"{repository}:{version}"
    sent = await set_image_tag(
        client, kind, namespace, name, version, container=container, repository=repository
    )
    if not sent:
        return (
            f"{what} (container `{container}`, the target of Canary {namespace}/{canary}) "
            f"already runs `{image}`; nothing was changed, so Flagger starts no new canary."
        )
    return (
        f"Set {what} (container `{container}`, the target of Canary {namespace}/{canary}) "
        f"to `{image}`: Flagger starts a canary of it at its next check."
    )
