"""What the emulated cluster holds and how tests arrange it: objects, controllers, images."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from .canaries import canary
from .controllers import deployments, rollouts
from .models import JSON
from .resources import CANARIES, DEPLOYMENTS, NAMESPACES, REPLICASETS, ROLLOUTS, by_kind
from .store import Store


def _pod_template(labels: dict[str, str], container: str, image: str) -> JSON:
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {
            "containers": [
                {
                    "name": container,
                    "image": image,
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                }
            ]
        },
    }


class Cluster:
    """The objects, and the controllers that move them (`reconcile()` is one pass)."""

    def __init__(self, *, ready_seconds: float, time_scale: float) -> None:
        self.store = Store()
        # Seconds before the pods of a scaled-up ReplicaSet are available.
        self.ready_seconds = ready_seconds
        # Factor on durations the objects state (progressDeadlineSeconds, pause durations):
        # at 0.01 a 600 s deadline passes in 6 s and a `pause: {duration: 30s}` in 0.3 s.
        self.time_scale = time_scale
        # The controllers' notes beside the objects (when pods were asked for, pauses began).
        self.memory: dict[tuple[str, str], Any] = {}
        self.failing_images: set[str] = set()
        self.controller_errors = 0

    # -- the controllers ------------------------------------------------------------------

    def reconcile(self) -> None:
        """One pass of every controller; runs by itself while serving."""
        for deployment in self.store.list(DEPLOYMENTS):
            deployments.sync(self, deployment)
        for rollout in self.store.list(ROLLOUTS):
            rollouts.sync(self, rollout)

    def settle(self) -> None:
        """Runs the controllers as if `ready_seconds` had passed: pods become available now
        (except a failing image's). For objects a test or the sandbox sets up beforehand."""
        saved, self.ready_seconds = self.ready_seconds, 0.0
        try:
            for _ in range(4):  # a ReplicaSet made, scaled, available, its owner's status
                self.reconcile()
        finally:
            self.ready_seconds = saved

    def collect_garbage(self, owner_uid: str) -> None:
        """Deletes what the deleted object owned, as the garbage collector would."""
        for resource in (REPLICASETS,):
            for obj in self.store.list(resource):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(ref.get("uid") == owner_uid for ref in refs):
                    meta = obj["metadata"]
                    self.store.delete(resource, meta["namespace"], meta["name"])
                    self.collect_garbage(meta["uid"])

    # -- images ---------------------------------------------------------------------------

    def fail_image(self, image: str) -> None:
        """Pods of this image (`shop:2`, or a tag alone: `2`) never become available."""
        self.failing_images.add(image)

    def heal_images(self) -> None:
        self.failing_images.clear()

    def image_fails(self, images: Iterable[str]) -> bool:
        for image in images:
            tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
            if image in self.failing_images or (tag and tag in self.failing_images):
                return True
        return False

    # -- arranging objects ----------------------------------------------------------------

    def add_namespace(self, name: str) -> JSON:
        found = self.store.get(NAMESPACES, "", name)
        if found is not None:
            return found
        return self.store.create(
            NAMESPACES,
            {
                "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            },
        )

    def add_deployment(
        self,
        namespace: str,
        name: str,
        *,
        image: str,
        replicas: int = 1,
        labels: dict[str, str] | None = None,
        container: str = "app",
        progress_deadline_seconds: int = 600,
        settled: bool = True,
    ) -> JSON:
        """A Deployment selecting `labels` (default `app: <name>`), its pods available at
        once unless `settled=False` (then they come up after `ready_seconds`, while serving)."""
        self.add_namespace(namespace)
        labels = labels or {"app": name}
        self.store.create(
            DEPLOYMENTS,
            {
                "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": dict(labels)},
                    "template": _pod_template(labels, container, image),
                    "strategy": {
                        "type": "RollingUpdate",
                        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                    },
                    "revisionHistoryLimit": 10,
                    "progressDeadlineSeconds": progress_deadline_seconds,
                },
            },
        )
        if settled:
            self.settle()
        return self.object("Deployment", namespace, name)

    def add_rollout(
        self,
        namespace: str,
        name: str,
        *,
        image: str,
        replicas: int = 5,
        steps: list[JSON] | None = None,
        labels: dict[str, str] | None = None,
        container: str = "app",
        progress_deadline_seconds: int = 600,
        settled: bool = True,
    ) -> JSON:
        """An Argo Rollout with a basic canary of these `steps` (default: 20%, pause, 50%,
        pause), Healthy at once unless `settled=False` (its first template skips the steps)."""
        self.add_namespace(namespace)
        labels = labels or {"app": name}
        if steps is None:
            steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
        self.store.create(
            ROLLOUTS,
            {
                "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": dict(labels)},
                    "template": _pod_template(labels, container, image),
                    "strategy": {"canary": {"steps": copy.deepcopy(steps)}},
                    "revisionHistoryLimit": 10,
                    "progressDeadlineSeconds": progress_deadline_seconds,
                },
            },
        )
        if settled:
            self.settle()
        return self.object("Rollout", namespace, name)

    def add_canary(
        self, namespace: str, name: str, *, target: str, target_kind: str = "Deployment"
    ) -> JSON:
        """A Flagger Canary whose `spec.targetRef` names `target_kind` `target` (no controller
        runs it: opsloop only reads it)."""
        self.add_namespace(namespace)
        self.store.create(CANARIES, canary(namespace, name, target=target, target_kind=target_kind))
        return self.object("Canary", namespace, name)

    def inconclusive(self, namespace: str, name: str) -> JSON:
        """Pauses the Rollout as an inconclusive analysis does (reason InconclusiveAnalysisRun),
        until promoted."""
        rollout = rollouts.pause_inconclusive(self.object("Rollout", namespace, name))
        return self.store.replace(ROLLOUTS, rollout)

    def compact(self) -> None:
        """Forgets the event history: a watch from an older resourceVersion answers 410."""
        self.store.compact()

    # -- reading --------------------------------------------------------------------------

    def object(self, kind: str, namespace: str, name: str) -> JSON:
        """The object as the API shows it (`Deployment`, `rollout`, `rs`...); KeyError if none."""
        resource = by_kind(kind)
        found = self.store.get(resource, namespace if resource.namespaced else "", name)
        if found is None:
            raise KeyError(f"no {resource.kind} {namespace}/{name} in the emulator")
        return found

    def objects(self, kind: str, namespace: str = "") -> list[JSON]:
        """Every object of a kind (in one namespace, or all), by namespace and name."""
        return self.store.list(by_kind(kind), namespace)

    def has(self, kind: str, namespace: str, name: str) -> bool:
        resource = by_kind(kind)
        return self.store.get(resource, namespace, name) is not None
