"""`opsloop check` for Kubernetes: the cluster answers, and each configured object exists and
may be changed as opsloop changes it (asked of the API server by SelfSubjectAccessReviews, so
the answer is the cluster's RBAC, not a guess)."""

from __future__ import annotations

from bot.errors import IntegrationError
from integrations.kubernetes.canary import canary_name
from integrations.kubernetes.client import KubeClient
from integrations.kubernetes.config import KubernetesService
from integrations.kubernetes.errors import DEPLOYMENT, ROLLOUT, Kind

# What opsloop does to each kind of object: (verb, subresource, of the canary rather than the
# object itself). The README's Role grants exactly these.
_ROLLOUT_NEEDS = (("get", "", False), ("watch", "", False), ("patch", "", False),
                  ("patch", "status", False))  # fmt: skip
_DEPLOYMENT_NEEDS = (("get", "", False), ("watch", "", False), ("patch", "", False),
                     ("patch", "scale", False), ("create", "", True), ("delete", "", True),
                     ("patch", "", True))  # fmt: skip


async def check_access(client: KubeClient, services: list[KubernetesService]) -> str:
    """A few words when all is well; RuntimeError listing every problem otherwise."""
    version = await client.version()
    problems: list[str] = []
    for service in services:
        kind = ROLLOUT if service.rollout is not None else DEPLOYMENT
        needs = _ROLLOUT_NEEDS if service.rollout is not None else _DEPLOYMENT_NEEDS
        problems += await _object(client, service, kind, needs)
    if problems:
        raise RuntimeError("; ".join(problems))
    objects = ", ".join(s.what for s in services)
    return f"API server {version} at {client.where} answers; {objects}: found, may be changed"


async def _object(
    client: KubeClient,
    service: KubernetesService,
    kind: Kind,
    needs: tuple[tuple[str, str, bool], ...],
) -> list[str]:
    name = service.object_name
    try:
        found = await client.find(kind, service.namespace, name)
    except IntegrationError as e:
        return [e.message]
    problems = [] if found is not None else [f"{service.what} was not found"]
    for verb, subresource, of_canary in needs:
        target = canary_name(name) if of_canary else name
        if not await client.may(verb, kind, service.namespace, target, subresource):
            resource = kind.plural + (f"/{subresource}" if subresource else "")
            problems.append(
                f"may not {verb} {resource} {service.namespace}/{target} (grant it in the Role)"
            )
    return problems
