"""SelfSubjectAccessReview: `kubectl auth can-i`, and `opsloop check`'s question."""

from __future__ import annotations

from aiohttp import web

from .errors import bad_request
from .protobuf import PROTOBUF, access_review_spec
from .requests import json_body
from .state import emulator_of


async def review(request: web.Request) -> web.Response:
    if request.method != "POST":
        raise web.HTTPMethodNotAllowed(request.method, ["POST"])
    if request.content_type == PROTOBUF:
        spec: object = access_review_spec(await request.read())
    else:
        body = await json_body(request)
        spec = body.get("spec") if isinstance(body, dict) else None
    if not isinstance(spec, dict):
        raise bad_request("a SelfSubjectAccessReview needs a spec")
    attributes = spec.get("resourceAttributes")
    emu = emulator_of(request)
    if isinstance(attributes, dict):
        denied = emu.denied(
            attributes.get("verb", ""),
            attributes.get("group", ""),
            attributes.get("resource", ""),
            attributes.get("subresource", ""),
            attributes.get("namespace", ""),
            attributes.get("name", ""),
        )
    else:
        denied = False  # non-resource URLs (/healthz...) are allowed to everyone here
    # RBAC never says `denied`: it only fails to allow, and then gives no reason.
    status: dict[str, object] = {"allowed": not denied}
    if not denied:
        status["reason"] = 'RBAC: allowed by RoleBinding "opsloop/opsloop" of Role "opsloop"'
    return web.json_response(
        {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        },
        status=201,
    )
