"""Reading and writing objects: list (and watch), get, create, update, patch, delete."""

from __future__ import annotations

import copy
import secrets
from typing import Any

from aiohttp import web

from . import api_subresources, api_watch, tables
from .api_authz import review
from .defaults import validate, with_defaults
from .errors import already_exists, not_found
from .models import JSON
from .requests import (
    Target,
    authorize,
    list_of,
    object_body,
    require_namespace,
    target_of,
)
from .resources import ROLLOUTS, SELF_SUBJECT_ACCESS_REVIEWS
from .selectors import object_matcher
from .state import emulator_of
from .store import Store
from .writes import check_version, patched_object

# Status fields a client may set through a Rollout itself (not its status subresource):
# `kubectl argo rollouts promote` falls back to the object when the subresource is missing.
ROLLOUT_STATUS_VIA_OBJECT = ("pauseConditions", "abort")


def _existing(store: Store, target: Target) -> JSON:
    found = store.get(target.resource, target.namespace, target.name)
    if found is None:
        raise not_found(target.resource, target.name)
    return found


async def collection(request: web.Request) -> web.StreamResponse:
    target = target_of(request)
    if target.resource is SELF_SUBJECT_ACCESS_REVIEWS:
        return await review(request)  # the access review is its own kind of answer
    if request.method == "POST" and target.resource.namespaced and not target.namespace:
        raise web.HTTPMethodNotAllowed("POST", ["GET"])  # create in a namespace's path
    if request.method == "POST":
        return await create(request, target)
    watching = request.query.get("watch", "").lower() in ("1", "true")
    authorize(request, "watch" if watching else "list", target)
    matcher = object_matcher(
        request.query.get("labelSelector", ""), request.query.get("fieldSelector", "")
    )
    if watching:
        return await api_watch.stream(request, target, matcher)
    store = emulator_of(request).store
    items = [o for o in store.list(target.resource, target.namespace) if matcher(o)]
    if tables.wanted(request):
        return web.json_response(tables.table(request, target.resource, items, store.rv))
    return web.json_response(list_of(target.resource, items, store.rv))


async def create(request: web.Request, target: Target) -> web.Response:
    authorize(request, "create", target)
    require_namespace(request, target.namespace)
    body = await object_body(request, target)
    meta = body["metadata"]
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
    resource = target.resource
    body.pop("status", None)  # the status subresource owns it
    with_defaults(resource, body)
    validate(resource, body)
    store = emulator_of(request).store
    if store.get(resource, target.namespace, meta["name"]) is not None:
        raise already_exists(resource, meta["name"])
    if request.query.get("dryRun"):
        return web.json_response(body, status=201)
    return web.json_response(store.create(resource, body), status=201)


async def item(request: web.Request) -> web.StreamResponse:
    target = target_of(request)
    if target.subresource:
        return await api_subresources.handle(request, target)
    store = emulator_of(request).store
    if request.method == "GET":
        authorize(request, "get", target)
        found = _existing(store, target)
        if tables.wanted(request):
            return web.json_response(tables.table(request, target.resource, [found], store.rv))
        return web.json_response(found)
    if request.method == "PUT":
        authorize(request, "update", target)
        body = await object_body(request, target)
        return web.json_response(write(request, target, _existing(store, target), body))
    if request.method == "PATCH":
        authorize(request, "patch", target)
        current = _existing(store, target)
        patched = await patched_object(request, target.resource, current)
        return web.json_response(write(request, target, current, patched))
    if request.method == "DELETE":
        authorize(request, "delete", target)
        return web.json_response(delete(request, target))
    raise web.HTTPMethodNotAllowed(request.method, ["GET", "PUT", "PATCH", "DELETE"])


def write(request: web.Request, target: Target, current: JSON, incoming: JSON) -> JSON:
    """Stores a new version of the object itself: its status stays the subresource's."""
    check_version(target, current, incoming)
    resource = target.resource
    updated = copy.deepcopy(incoming)
    updated.setdefault("metadata", {})
    updated["metadata"]["name"] = target.name
    if resource.namespaced:
        updated["metadata"]["namespace"] = target.namespace
    status = copy.deepcopy(current.get("status"))
    if resource is ROLLOUTS:
        status = _rollout_status_via_object(status, incoming.get("status"))
    if status is None:
        updated.pop("status", None)
    else:
        updated["status"] = status
    with_defaults(resource, updated)
    validate(resource, updated)
    if request.query.get("dryRun"):
        return updated
    return emulator_of(request).store.replace(resource, updated)


def _rollout_status_via_object(current: Any, incoming: Any) -> Any:
    if not isinstance(incoming, dict):
        return current
    status = dict(current or {})
    for key in ROLLOUT_STATUS_VIA_OBJECT:
        # A merge patch's null has already removed the key: absent means cleared.
        if incoming.get(key) is None:
            status.pop(key, None)
        else:
            status[key] = incoming[key]
    return status


def delete(request: web.Request, target: Target) -> JSON:
    emu = emulator_of(request)
    found = emu.store.delete(target.resource, target.namespace, target.name)
    if found is None:
        raise not_found(target.resource, target.name)
    emu.collect_garbage(found["metadata"]["uid"])
    details: JSON = {
        "name": target.name,
        "kind": target.resource.plural,
        "uid": found["metadata"]["uid"],
    }
    if target.resource.group:
        details["group"] = target.resource.group
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def add_routes(app: web.Application) -> None:
    for prefix in ("/api/{version:v1}", "/apis/{group}/{version}"):
        app.router.add_route("*", prefix + "/{plural}", collection)
        app.router.add_route("*", prefix + "/{plural}/{name}", item)
        app.router.add_route("*", prefix + "/namespaces/{namespace}/{plural}", collection)
        app.router.add_route("*", prefix + "/namespaces/{namespace}/{plural}/{name}", item)
        app.router.add_route(
            "*", prefix + "/namespaces/{namespace}/{plural}/{name}/{subresource}", item
        )
