"""The Deployment controller, simulated: one ReplicaSet per pod template; the new one scaled
to `spec.replicas`, the old ones to 0 once the new pods are available; the status and its
Available/Progressing conditions as kube-controller-manager writes them.

A rollout that does not finish within `spec.progressDeadlineSeconds` × `emu.time_scale`
gets Progressing False, reason ProgressDeadlineExceeded (what `kubectl rollout status`
reports as `exceeded its progress deadline`).
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from ..models import JSON
from ..resources import DEPLOYMENTS
from ..store import stable_hash
from .workloads import (
    available,
    ensure_replicaset,
    owned_by,
    replicas,
    revision_of,
    scale,
    set_condition,
    sync_pods,
)

if TYPE_CHECKING:
    from ..cluster import Cluster

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


def max_unavailable(deployment: JSON, wanted: int) -> int:
    """`maxUnavailable` of a RollingUpdate (25% by default), rounded down as Kubernetes does."""
    rolling = ((deployment["spec"].get("strategy") or {}).get("rollingUpdate")) or {}
    value = rolling.get("maxUnavailable", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return wanted * int(value[:-1]) // 100
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else 0


def sync(emu: Cluster, deployment: JSON) -> None:
    wanted = replicas(deployment)
    pod_hash = stable_hash(deployment["spec"]["template"])
    replicasets = owned_by(emu, deployment)
    new = next(
        (rs for rs in replicasets if rs["metadata"]["labels"].get(HASH_LABEL) == pod_hash), None
    )
    if new is None:
        revision = max((revision_of(rs, REVISION) for rs in replicasets), default=0) + 1
        new = ensure_replicaset(
            emu, deployment, DEPLOYMENTS, HASH_LABEL, pod_hash, REVISION, revision
        )
        replicasets.append(new)
    olds = [rs for rs in replicasets if rs["metadata"]["uid"] != new["metadata"]["uid"]]
    if not deployment["spec"].get("paused"):
        new = sync_pods(emu, scale(emu, new, wanted))
        if available(new) >= wanted:
            olds = [scale(emu, rs, 0) for rs in olds]
    new = sync_pods(emu, new)
    olds = [sync_pods(emu, rs) for rs in olds]
    _write_status(emu, deployment, new, olds, pod_hash)


def _write_status(
    emu: Cluster, deployment: JSON, new: JSON, olds: list[JSON], pod_hash: str
) -> None:
    wanted = replicas(deployment)
    uid = deployment["metadata"]["uid"]
    now = time.monotonic()
    progress = emu.memory.get(("deploy", uid))
    if progress is None or progress[:2] != (pod_hash, wanted):
        emu.memory[("deploy", uid)] = progress = (pod_hash, wanted, now)
    total = replicas(new) + sum(replicas(rs) for rs in olds)
    ready = available(new) + sum(available(rs) for rs in olds)
    old = deployment.get("status") or {}
    conditions: list[JSON] = copy.deepcopy(old.get("conditions") or [])
    if ready >= wanted - max_unavailable(deployment, wanted):
        set_condition(
            conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    else:
        set_condition(
            conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    name = new["metadata"]["name"]
    complete = available(new) >= wanted and replicas(new) == wanted and total == wanted
    deadline = float(deployment["spec"].get("progressDeadlineSeconds", 600)) * emu.time_scale
    if complete:
        set_condition(
            conditions,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{name}" has successfully progressed.',
        )
    elif now - progress[2] > deadline:
        set_condition(
            conditions,
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{name}" has timed out progressing.',
        )
    else:
        set_condition(
            conditions,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            f'ReplicaSet "{name}" is progressing.',
        )
    status: dict[str, Any] = {"observedGeneration": deployment["metadata"]["generation"]}
    # Zero counts are left out, as the real API omits them (omitempty).
    for key, value in (
        ("replicas", total),
        ("updatedReplicas", replicas(new)),
        ("readyReplicas", ready),
        ("availableReplicas", ready),
        ("unavailableReplicas", max(0, wanted - ready)),
    ):
        if value:
            status[key] = value
    status["conditions"] = conditions
    if old == status and revision_of(deployment, REVISION) == revision_of(new, REVISION):
        return
    updated = copy.deepcopy(deployment)
    updated["status"] = status
    updated["metadata"].setdefault("annotations", {})[REVISION] = str(revision_of(new, REVISION))
    emu.store.replace(DEPLOYMENTS, updated)
