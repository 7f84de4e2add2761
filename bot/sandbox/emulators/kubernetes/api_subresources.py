"""The `scale` subresource (autoscaling/v1 Scale) and the `status` subresource."""

from __future__ import annotations

import copy

from aiohttp import web

from .errors import invalid, not_found
from .models import JSON
from .requests import Target, authorize, object_body
from .state import emulator_of
from .writes import check_version, patched_object

_VERBS = {"GET": "get", "PUT": "update", "PATCH": "patch"}


def selector_text(obj: JSON) -> str:
    labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def scale_of(obj: JSON) -> JSON:
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": obj.get("spec", {}).get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": selector_text(obj),
        },
    }


async def handle(request: web.Request, target: Target) -> web.Response:
    verb = _VERBS.get(request.method)
    if verb is None:
        raise web.HTTPMethodNotAllowed(request.method, list(_VERBS))
    authorize(request, verb, target)
    store = emulator_of(request).store
    current = store.get(target.resource, target.namespace, target.name)
    if current is None:
        raise not_found(target.resource, target.name)
    scale = target.subresource == "scale"
    shown = scale_of(current) if scale else current
    if request.method == "GET":
        return web.json_response(shown)
    if request.method == "PUT":
        incoming = await object_body(request, target)
    else:
        incoming = await patched_object(request, target.resource, shown)
    check_version(target, current, incoming)
    updated = copy.deepcopy(current)
    if scale:
        replicas = (incoming.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise invalid(
                target.resource,
                target.name,
                "spec.replicas",
                replicas,
                "must be greater than or equal to 0",
            )
        updated["spec"]["replicas"] = replicas
    else:
        # Only the status changes through the status subresource, as in the real server.
        if incoming.get("status") is None:
            updated.pop("status", None)
        else:
            updated["status"] = incoming["status"]
    if request.query.get("dryRun"):
        return web.json_response(scale_of(updated) if scale else updated)
    stored = store.replace(target.resource, updated)
    return web.json_response(scale_of(stored) if scale else stored)
