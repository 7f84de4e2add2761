"""What the API server fills in and refuses on a write (defaults, the few validations)."""

from __future__ import annotations

from typing import Any

from .errors import KubeError, invalid, required
from .models import JSON
from .resources import DEPLOYMENTS, NAMESPACES, REPLICASETS, ROLLOUTS, Resource


def with_defaults(resource: Resource, obj: JSON) -> JSON:
    spec = obj.get("spec")
    if resource is NAMESPACES:
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
        obj["metadata"].setdefault("labels", {})
        obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif resource in (DEPLOYMENTS, REPLICASETS, ROLLOUTS) and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        if resource is DEPLOYMENTS:
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
            if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                strategy.setdefault("rollingUpdate", {"maxUnavailable": "25%", "maxSurge": "25%"})
    return obj


def validate(resource: Resource, obj: JSON) -> None:
    """The checks a client of opsloop can trip: names, replicas, containers with images."""
    name = obj["metadata"].get("name", "")
    if not name:
        raise KubeError(
            422,
            "Invalid",
            f'{resource.kind} "" is invalid: metadata.name: '
            "Required value: name or generateName is required",
        )
    if resource is NAMESPACES:
        return
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise required(resource, name, "spec")
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise invalid(
            resource, name, "spec.replicas", replicas, "must be greater than or equal to 0"
        )
    containers = (spec.get("template") or {}).get("spec", {}).get("containers")
    if resource is ROLLOUTS and spec.get("workloadRef"):
        return
    if not isinstance(containers, list) or not containers:
        raise required(resource, name, "spec.template.spec.containers")
    for index, container in enumerate(containers):
        _container(resource, name, index, container)


def _container(resource: Resource, name: str, index: int, container: Any) -> None:
    where = f"spec.template.spec.containers[{index}]"
    if not isinstance(container, dict) or not container.get("name"):
        raise required(resource, name, f"{where}.name")
    if not container.get("image"):
        raise required(resource, name, f"{where}.image")
