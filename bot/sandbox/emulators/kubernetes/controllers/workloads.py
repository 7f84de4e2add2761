"""ReplicaSets and their pods, simulated: pods of a scaled-up ReplicaSet become available
`emu.ready_seconds` after the change, unless their image is one `emu.fail_image()` named."""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from ..models import JSON
from ..resources import REPLICASETS, Resource
from ..store import now_iso

if TYPE_CHECKING:
    from ..cluster import Cluster


def images(template: JSON) -> list[str]:
    containers = (template.get("spec") or {}).get("containers") or []
    return [c.get("image", "") for c in containers if isinstance(c, dict)]


def replicas(obj: JSON) -> int:
    value = (obj.get("spec") or {}).get("replicas", 1)
    return value if isinstance(value, int) else 1


def available(rs: JSON | None) -> int:
    if rs is None:
        return 0
    return int((rs.get("status") or {}).get("availableReplicas") or 0)


def owned_by(emu: Cluster, owner: JSON) -> list[JSON]:
    uid = owner["metadata"]["uid"]
    namespace = owner["metadata"].get("namespace", "")
    return [
        rs
        for rs in emu.store.list(REPLICASETS, namespace)
        if any(ref.get("uid") == uid for ref in rs["metadata"].get("ownerReferences") or [])
    ]


def ensure_replicaset(
    emu: Cluster,
    owner: JSON,
    owner_resource: Resource,
    hash_label: str,
    pod_hash: str,
    revision_annotation: str,
    revision: int,
) -> JSON:
    """The owner's ReplicaSet for this pod template (`<owner>-<hash>`), made at 0 replicas."""
    meta = owner["metadata"]
    name = f"{meta['name']}-{pod_hash}"
    found = emu.store.get(REPLICASETS, meta["namespace"], name)
    if found is not None:
        return found
    template = copy.deepcopy(owner["spec"]["template"])
    template.setdefault("metadata", {}).setdefault("labels", {})[hash_label] = pod_hash
    selector = copy.deepcopy(owner["spec"].get("selector") or {})
    selector.setdefault("matchLabels", {})[hash_label] = pod_hash
    replicaset = {
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {revision_annotation: str(revision)},
            "ownerReferences": [
                {
                    "apiVersion": owner_resource.api_version,
                    "kind": owner_resource.kind,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {"replicas": 0, "selector": selector, "template": template},
        "status": {"replicas": 0},
    }
    return emu.store.create(REPLICASETS, replicaset)


def revision_of(obj: JSON, annotation: str) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(annotation, "0"))
    except ValueError:
        return 0


def scale(emu: Cluster, rs: JSON, count: int) -> JSON:
    if replicas(rs) == count:
        return rs
    rs = copy.deepcopy(rs)
    rs["spec"]["replicas"] = count
    return emu.store.replace(REPLICASETS, rs)


def sync_pods(emu: Cluster, rs: JSON) -> JSON:
    """Moves the ReplicaSet's status the way its pods would: fewer at once when scaled down,
    more after `ready_seconds` when scaled up (never, for a failing image)."""
    wanted = replicas(rs)
    uid = rs["metadata"]["uid"]
    now = time.monotonic()
    last = emu.memory.get(("rs", uid))
    if last is None or last[0] != wanted:
        emu.memory[("rs", uid)] = last = (wanted, now)
    ready = available(rs)
    came_up = now - last[1] >= emu.ready_seconds
    if ready > wanted or (came_up and not emu.image_fails(images(rs["spec"]["template"]))):
        ready = wanted
    status: dict[str, Any] = {
        "replicas": wanted,
        "observedGeneration": rs["metadata"]["generation"],
    }
    if wanted:
        status["fullyLabeledReplicas"] = wanted
    if ready:
        status.update(readyReplicas=ready, availableReplicas=ready)
    if rs.get("status") == status:
        return rs
    rs = copy.deepcopy(rs)
    rs["status"] = status
    return emu.store.replace(REPLICASETS, rs)


def set_condition(
    conditions: list[JSON],
    kind: str,
    status: str,
    reason: str,
    message: str,
    *,
    update_time: bool = True,
) -> None:
    """Sets one condition, keeping its times while nothing about it changes (so an unchanged
    object is not rewritten, and lastTransitionTime means what it says)."""
    now = now_iso()
    old = next((c for c in conditions if c.get("type") == kind), None)
    new = {"type": kind, "status": status, "reason": reason, "message": message}
    if old is not None:
        same = all(old.get(k) == v for k, v in new.items())
        transition = old.get("lastTransitionTime") if old.get("status") == status else now
        updated = old.get("lastUpdateTime") if same else now
        conditions.remove(old)
    else:
        transition = updated = now
    if update_time:
        new["lastUpdateTime"] = updated or now
    new["lastTransitionTime"] = transition or now
    conditions.append(new)
    conditions.sort(key=lambda c: str(c.get("type")))
