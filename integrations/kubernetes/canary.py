"""The canary of a plain Deployment, as the Kubernetes documentation's canary pattern has it
(concepts/workloads/management, "Canary deployments"): a second Deployment `<name>-canary`
whose pods carry the stable pods' labels plus `track: canary`, so the Service that selects
the stable pods spreads traffic over both by pod count. Pure functions over the Deployments as
the API server returns them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from integrations.kubernetes import pods
from integrations.kubernetes.config import CANARY_SUFFIX

TRACK = "track"
CANARY = "canary"
MANAGED_BY = "app.kubernetes.io/managed-by"
CANARY_OF = "opsloop.io/canary-of"  # on the canary: the stable Deployment it copies


def canary_name(stable: str) -> str:
    return stable + CANARY_SUFFIX


def canary_of(
    stable: dict[str, Any], image_index: int, image: str, replicas: int
) -> dict[str, Any]:
    """The canary Deployment: the stable one's pod template with `image` in the container at
    `image_index`, `track: canary` on its pods and in its selector, owned by nothing."""
    meta = stable.get("metadata") or {}
    spec = stable.get("spec") or {}
    name = canary_name(str(meta.get("name", "")))
    template = copy.deepcopy(spec.get("template") or {})
    template.setdefault("metadata", {}).setdefault("labels", {})[TRACK] = CANARY
    template["spec"]["containers"][image_index]["image"] = image
    selector = copy.deepcopy(spec.get("selector") or {})
    selector.setdefault("matchLabels", {})[TRACK] = CANARY
    labels = {**(meta.get("labels") or {}), TRACK: CANARY, MANAGED_BY: "opsloop"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": meta.get("namespace"),
            "labels": labels,
            "annotations": {CANARY_OF: str(meta.get("name", ""))},
        },
        "spec": {
            "replicas": replicas,
            "selector": selector,
            "template": template,
            # When a pod counts as available, and how long it may take: as for the stable pods.
            **{k: spec[k] for k in ("minReadySeconds", "progressDeadlineSeconds") if k in spec},
        },
    }


@dataclass(frozen=True)
class Counted:
    """A Deployment's pods as its status counts them."""

    version: str  # the tag of the deployed container's image in its spec
    wanted: int  # spec.replicas
    pods: int  # status.replicas: every pod, old ones still terminating included
    updated: int
    available: int
    observed: bool  # the Deployment controller has seen the spec
    failure: str | None  # why it will not progress (ProgressDeadlineExceeded, ReplicaFailure)

    def runs(self, version: str, replicas: int) -> bool:
        """Exactly `replicas` available pods, all of `version`."""
        if not self.observed or self.version != version or self.wanted != replicas:
            return False
        return self.updated == replicas and self.available == replicas and self.pods == replicas

    @property
    def ready(self) -> int:
        """Available pods of the spec's version."""
        return min(self.updated, self.available)


def count(deployment: dict[str, Any], container: str | None, what: str) -> Counted:
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    _, wanted = pods.pick(spec.get("template") or {}, container, what)
    generation = (deployment.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    return Counted(
        version=pods.tag(str(wanted.get("image", ""))),
        wanted=_int(spec.get("replicas", 1)),
        pods=_int(status.get("replicas")),
        updated=_int(status.get("updatedReplicas")),
        available=_int(status.get("availableReplicas")),
        observed=not isinstance(generation, int) or _int(observed) >= generation,
        failure=_failure(status),
    )


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int) else 0


def _failure(status: dict[str, Any]) -> str | None:
    for condition in status.get("conditions") or []:
        if not isinstance(condition, dict):
            continue
        kind, reason = condition.get("type"), condition.get("reason")
        if (kind == "Progressing" and reason == "ProgressDeadlineExceeded") or (
            kind == "ReplicaFailure" and condition.get("status") == "True"
        ):
            return f"{reason}: {condition.get('message', '')}".strip(": ")
    return None
