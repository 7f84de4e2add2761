"""Reading a resource request: which object it names, its body, and whether it is allowed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .errors import bad_request, forbidden, not_found, path_not_found
from .models import JSON
from .resources import NAMESPACES, Resource, find
from .state import emulator_of


@dataclass(frozen=True)
class Target:
    """What a path names: a resource, maybe a namespace, an object and a subresource."""

    resource: Resource
    namespace: str
    name: str
    subresource: str


def target_of(request: web.Request) -> Target:
    info = request.match_info
    group, version = info.get("group", ""), info.get("version", "v1")
    resource = find(group, version, info["plural"])
    subresource = info.get("subresource", "")
    if resource is None or (subresource and subresource not in resource.subresources):
        raise path_not_found(request.path)
    namespace = info.get("namespace", "")
    if resource.namespaced != bool(namespace) and info.get("name"):
        raise path_not_found(request.path)
    return Target(resource, namespace, info.get("name", ""), subresource)


def authorize(request: web.Request, verb: str, target: Target) -> None:
    """403 Forbidden where `emu.deny()` said so, worded as kube-apiserver's authorizer."""
    emu = emulator_of(request)
    resource = target.resource
    if emu.denied(
        verb, resource.group, resource.plural, target.subresource, target.namespace, target.name
    ):
        raise forbidden(emu.user, verb, resource, target.subresource, target.namespace, target.name)


def require_namespace(request: web.Request, namespace: str) -> None:
    if namespace and emulator_of(request).store.get(NAMESPACES, "", namespace) is None:
        raise not_found(NAMESPACES, namespace)


async def json_body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise bad_request(f"the body of the request could not be decoded as JSON: {e}") from e


async def object_body(request: web.Request, target: Target) -> JSON:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise bad_request("the body of the request must be a JSON object")
    meta = body.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise bad_request("metadata must be an object")
    if target.namespace:
        if meta.get("namespace") not in (None, "", target.namespace):
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        meta["namespace"] = target.namespace
    if target.name and meta.get("name") not in (None, target.name):
        raise bad_request(
            f"the name of the object ({meta.get('name')}) does not match the name on the URL "
            f"({target.name})"
        )
    if target.name:
        meta["name"] = target.name
    return body


def list_of(resource: Resource, items: list[JSON], rv: int) -> JSON:
    return {
        "kind": resource.list_kind,
        "apiVersion": resource.api_version,
        "metadata": {"resourceVersion": str(rv)},
        "items": items,
    }
