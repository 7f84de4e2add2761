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
    _template(resource, name, spec)
    if resource is ROLLOUTS:
        _steps(resource, name, spec)


def _template(resource: Resource, name: str, spec: JSON) -> None:
    """A selector, a pod template whose labels it selects, containers with names and images."""
    selector = spec.get("selector")
    match = selector.get("matchLabels") if isinstance(selector, dict) else None
    if not isinstance(match, dict) or not match:
        raise required(resource, name, "spec.selector")
    template = spec.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        raise required(resource, name, "spec.template")
    labels = (template.get("metadata") or {}).get("labels")
    if not isinstance(labels, dict) or any(labels.get(k) != v for k, v in match.items()):
        raise invalid(
            resource,
            name,
            "spec.template.metadata.labels",
            str(labels),
            "`selector` does not match template `labels`",
        )
    containers = template["spec"].get("containers")
    if not isinstance(containers, list) or not containers:
        raise required(resource, name, "spec.template.spec.containers")
    for index, container in enumerate(containers):
        _container(resource, name, index, container)


def _steps(resource: Resource, name: str, spec: JSON) -> None:
    """The types the Rollout CRD's schema enforces on the canary steps this emulator walks."""
    strategy = spec.get("strategy")
    canary = strategy.get("canary") if isinstance(strategy, dict) else None
    if not isinstance(canary, dict):
        raise invalid(
            resource,
            name,
            "spec.strategy",
            str(strategy),
            "the emulator runs the canary strategy only: set strategy.canary",
        )
    steps = canary.get("steps") or []
    if not isinstance(steps, list):
        raise invalid(resource, name, "spec.strategy.canary.steps", str(steps), "must be a list")
    for index, step in enumerate(steps):
        where = f"spec.strategy.canary.steps[{index}]"
        if not isinstance(step, dict):
            raise invalid(resource, name, where, str(step), "must be an object")
        weight = step.get("setWeight", 0)
        if "setWeight" in step and (not isinstance(weight, int) or not 0 <= weight <= 100):
            raise invalid(
                resource, name, f"{where}.setWeight", weight, "must be an integer from 0 to 100"
            )
        if "pause" in step and not isinstance(step["pause"], dict):
            raise invalid(resource, name, f"{where}.pause", str(step["pause"]), "must be an object")


def _container(resource: Resource, name: str, index: int, container: Any) -> None:
    where = f"spec.template.spec.containers[{index}]"
    if not isinstance(container, dict) or not container.get("name"):
        raise required(resource, name, f"{where}.name")
    if not container.get("image"):
        raise required(resource, name, f"{where}.image")
