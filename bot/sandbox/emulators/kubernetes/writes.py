"""Applying a write's precondition and patch to the stored object."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .errors import KubeError, bad_request, conflict, unsupported_patch
from .models import JSON
from .patches import APPLY, JSON_PATCH, MERGE, STRATEGIC, PatchError, apply_patch
from .requests import Target, json_body
from .resources import Resource


async def patched_object(request: web.Request, resource: Resource, current: Any) -> Any:
    """The object after the request's patch, by its content type (415 where not allowed)."""
    kind = request.content_type
    if (kind == STRATEGIC and resource.custom) or kind == APPLY:
        raise unsupported_patch()
    if kind not in (MERGE, JSON_PATCH, STRATEGIC):
        raise unsupported_patch()
    patch = await json_body(request)
    try:
        patched = apply_patch(kind, current, patch)
    except PatchError as e:
        raise KubeError(422 if kind == JSON_PATCH else 400, "BadRequest", str(e)) from e
    if not isinstance(patched, dict):
        raise bad_request("the patch did not leave an object")
    return patched


def check_version(target: Target, current: JSON, incoming: JSON) -> None:
    """A write naming a resourceVersion other than the stored one loses: 409 Conflict."""
    wanted = (incoming.get("metadata") or {}).get("resourceVersion")
    if wanted and wanted != current["metadata"]["resourceVersion"]:
        raise conflict(target.resource, target.name)
