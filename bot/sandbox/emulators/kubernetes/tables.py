"""`kubectl get`'s tables: the server renders the columns (meta.k8s.io/v1 Table).

kubectl asks with `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`; the columns
are those of the real server (Deployments, ReplicaSets, Namespaces) and of Argo's CRD's
additionalPrinterColumns (Rollouts, Flagger's Canaries).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .models import JSON
from .resources import CANARIES, DEPLOYMENTS, NAMESPACES, REPLICASETS, ROLLOUTS, Resource

Cell = Callable[[JSON], Any]


def wanted(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def _status(obj: JSON, key: str) -> int:
    return int((obj.get("status") or {}).get(key) or 0)


def _spec_replicas(obj: JSON) -> int:
    return int((obj.get("spec") or {}).get("replicas", 1))


def age(obj: JSON) -> str:
    created = obj["metadata"].get("creationTimestamp")
    if not created:
        return "<unknown>"
    then = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    seconds = max(0, int((datetime.now(UTC) - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    return f"{minutes // 60}h"


_NAME: tuple[str, str, Cell] = ("Name", "name", lambda o: o["metadata"]["name"])
_AGE: tuple[str, str, Cell] = ("Age", "", age)

COLUMNS: dict[str, list[tuple[str, str, Cell]]] = {
    DEPLOYMENTS.plural: [
        _NAME,
        ("Ready", "", lambda o: f"{_status(o, 'readyReplicas')}/{_spec_replicas(o)}"),
        ("Up-to-date", "", lambda o: _status(o, "updatedReplicas")),
        ("Available", "", lambda o: _status(o, "availableReplicas")),
        _AGE,
    ],
    REPLICASETS.plural: [
        _NAME,
        ("Desired", "", _spec_replicas),
        ("Current", "", lambda o: _status(o, "replicas")),
        ("Ready", "", lambda o: _status(o, "readyReplicas")),
        _AGE,
    ],
    ROLLOUTS.plural: [
        _NAME,
        ("Desired", "", _spec_replicas),
        ("Current", "", lambda o: _status(o, "replicas")),
        ("Up-to-date", "", lambda o: _status(o, "updatedReplicas")),
        ("Available", "", lambda o: _status(o, "availableReplicas")),
        _AGE,
    ],
    CANARIES.plural: [  # Flagger's CRD's additionalPrinterColumns (priority 0)
        _NAME,
        ("Status", "", lambda o: (o.get("status") or {}).get("phase", "")),
        ("Weight", "", lambda o: _status(o, "canaryWeight")),
        _AGE,
    ],
    NAMESPACES.plural: [
        _NAME,
        ("Status", "", lambda o: (o.get("status") or {}).get("phase", "")),
        _AGE,
    ],
}


def _row(request: web.Request, obj: JSON, columns: list[tuple[str, str, Cell]]) -> JSON:
    if request.query.get("includeObject") == "Object":
        shown = obj
    else:
        shown = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"],
        }
    return {"cells": [cell(obj) for _, _, cell in columns], "object": shown}


def table(request: web.Request, resource: Resource, items: list[JSON], rv: int) -> JSON:
    columns = COLUMNS[resource.plural]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": str(rv)},
        "columnDefinitions": [
            {
                "name": title,
                "type": "integer"
                if title in ("Desired", "Current", "Up-to-date", "Available")
                else "string",
                "format": fmt,
                "description": title,
                "priority": 0,
            }
            for title, fmt, _ in columns
        ],
        "rows": [_row(request, obj, columns) for obj in items],
    }
