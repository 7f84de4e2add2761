"""Discovery: /version, /api, /apis and each group version, in the legacy shapes.

kubectl 1.32 first asks for aggregated discovery (`application/json;g=apidiscovery.k8s.io;
v=v2;as=APIGroupDiscoveryList`) and falls back to these when the answer is plain
`application/json`, as it is from servers older than 1.26 and from this emulator.
"""

from __future__ import annotations

from aiohttp import web

from .models import JSON
from .resources import GROUP_VERSIONS, RESOURCES, Resource
from .state import emulator_of

VERSION: JSON = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4",
    "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
    "gitTreeState": "clean",
    "buildDate": "2025-04-22T16:02:27Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _group_version(group: str, version: str) -> JSON:
    return {"groupVersion": f"{group}/{version}", "version": version}


def _group(group: str) -> JSON:
    version = _group_version(group, GROUP_VERSIONS[group])
    return {"name": group, "versions": [version], "preferredVersion": version}


def _entries(resource: Resource) -> list[JSON]:
    main: JSON = {
        "name": resource.plural,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": list(resource.verbs),
    }
    if resource.short_names:
        main["shortNames"] = list(resource.short_names)
    if resource.categories:
        main["categories"] = list(resource.categories)
    entries = [main]
    for sub in resource.subresources:
        entry: JSON = {
            "name": f"{resource.plural}/{sub}",
            "singularName": "",
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": ["get", "patch", "update"],
        }
        if sub == "scale":
            entry.update(group="autoscaling", version="v1", kind="Scale")
        entries.append(entry)
    return entries


def _resource_list(group: str, version: str) -> JSON:
    group_version = f"{group}/{version}" if group else version
    resources = [r for r in RESOURCES if (r.group, r.version) == (group, version)]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [entry for r in resources for entry in _entries(r)],
    }


async def version(request: web.Request) -> web.Response:
    return web.json_response(VERSION)


async def core_versions(request: web.Request) -> web.Response:
    address = f"127.0.0.1:{request.url.port}"
    return web.json_response(
        {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
        }
    )


async def core_resources(request: web.Request) -> web.Response:
    return web.json_response(_resource_list("", "v1"))


async def groups(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [_group(g) for g in GROUP_VERSIONS],
        }
    )


async def group(request: web.Request) -> web.Response:
    name = request.match_info["group"]
    if name not in GROUP_VERSIONS:
        raise web.HTTPNotFound()
    return web.json_response({"kind": "APIGroup", "apiVersion": "v1", **_group(name)})


async def group_resources(request: web.Request) -> web.Response:
    name, version_ = request.match_info["group"], request.match_info["version"]
    if GROUP_VERSIONS.get(name) != version_:
        raise web.HTTPNotFound()
    return web.json_response(_resource_list(name, version_))


async def healthz(request: web.Request) -> web.Response:
    emulator_of(request)
    return web.Response(text="ok")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/version", version)
    app.router.add_get("/version/", version)  # kubernetes-asyncio's VersionApi asks here
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", healthz)
    app.router.add_get("/api", core_versions)
    app.router.add_get("/api/v1", core_resources)
    app.router.add_get("/apis", groups)
    app.router.add_get("/apis/{group}", group)
    app.router.add_get("/apis/{group}/{version}", group_resources)
