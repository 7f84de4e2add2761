"""Just enough OpenAPI v3 for `kubectl create -f` and `kubectl apply -f`.

kubectl validates a manifest on the server (`?fieldValidation=Strict`) when the server's
OpenAPI v3 document lists that query parameter on the PATCH of the kind; otherwise it
downloads the whole schema to validate on the client. These documents say only that, so
kubectl leaves validation to the server (which here accepts any field).
"""

from __future__ import annotations

from aiohttp import web

from .models import JSON
from .resources import GROUP_VERSIONS, STORED, Resource

_FIELD_VALIDATION = {
    "name": "fieldValidation",
    "in": "query",
    "description": "how the server treats unknown or duplicate fields",
    "schema": {"type": "string", "uniqueItems": True},
}


def _prefix(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _paths(resource: Resource) -> JSON:
    base = "/" + _prefix(resource.group, resource.version)
    if resource.namespaced:
        base += "/namespaces/{namespace}"
    patch = {
        "operationId": f"patch{resource.kind}",
        "parameters": [_FIELD_VALIDATION],
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {
            "group": resource.group,
            "version": resource.version,
            "kind": resource.kind,
        },
    }
    return {f"{base}/{resource.plural}/{{name}}": {"patch": patch}}


async def index(request: web.Request) -> web.Response:
    versions = [("", "v1"), *GROUP_VERSIONS.items()]
    return web.json_response(
        {
            "paths": {
                _prefix(g, v): {"serverRelativeURL": f"/openapi/v3/{_prefix(g, v)}?hash=emulator"}
                for g, v in versions
            }
        }
    )


async def group_version(request: web.Request) -> web.Response:
    wanted = request.match_info["path"]
    paths: JSON = {}
    for resource in STORED:
        if _prefix(resource.group, resource.version) == wanted:
            paths.update(_paths(resource))
    if not paths and wanted not in (
        "api/v1",
        *(f"apis/{g}/{v}" for g, v in GROUP_VERSIONS.items()),
    ):
        raise web.HTTPNotFound()
    return web.json_response(
        {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.32.4"},
            "paths": paths,
            "components": {"schemas": {}},
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi/v3", index)
    app.router.add_get("/openapi/v3/{path:.+}", group_version)
