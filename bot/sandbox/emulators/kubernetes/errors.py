"""Kubernetes `Status` answers for errors, worded as the real API server words them."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .models import JSON
from .resources import Resource


class KubeError(Exception):
    """An answer other than success, carrying its `Status` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JSON | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status_object(code, reason, message, details)
        self.headers = headers

    def response(self) -> web.Response:
        return web.json_response(self.status, status=self.code, headers=self.headers)


def status_object(code: int, reason: str, message: str, details: JSON | None = None) -> JSON:
    status: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        status["details"] = details
    status["code"] = code
    return status


def _details(resource: Resource, name: str) -> JSON:
    details: JSON = {"name": name} if name else {}
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.plural
    return details


def _subject(resource: Resource, name: str) -> str:
    return f'{resource.qualified} "{name}"' if name else resource.qualified


def not_found(resource: Resource, name: str) -> KubeError:
    return KubeError(
        404, "NotFound", f"{_subject(resource, name)} not found", _details(resource, name)
    )


def already_exists(resource: Resource, name: str) -> KubeError:
    return KubeError(
        409, "AlreadyExists", f"{_subject(resource, name)} already exists", _details(resource, name)
    )


def conflict(resource: Resource, name: str) -> KubeError:
    message = (
        f"Operation cannot be fulfilled on {_subject(resource, name)}: the object has been "
        "modified; please apply your changes to the latest version and try again"
    )
    return KubeError(409, "Conflict", message, _details(resource, name))


def forbidden(
    user: str, verb: str, resource: Resource, subresource: str, namespace: str, name: str
) -> KubeError:
    """The authorizer's refusal, word for word as kube-apiserver writes it."""
    full = f"{resource.plural}/{subresource}" if subresource else resource.plural
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (
        f'{_subject(resource, name)} is forbidden: User "{user}" cannot {verb} resource '
        f'"{full}" in API group "{resource.group}" {where}'
    )
    return KubeError(403, "Forbidden", message, _details(resource, name))


def invalid(resource: Resource, name: str, field: str, value: Any, problem: str) -> KubeError:
    """A 422: `Deployment.apps "x" is invalid: spec.replicas: Invalid value: -1: ...`."""
    shown = f'"{value}"' if isinstance(value, str) else value
    return _invalid(
        resource, name, field, "FieldValueInvalid", f"Invalid value: {shown}: {problem}"
    )


def required(resource: Resource, name: str, field: str) -> KubeError:
    """A 422 for a missing field: `... is invalid: spec.template...image: Required value`."""
    return _invalid(resource, name, field, "FieldValueRequired", "Required value")


def _invalid(resource: Resource, name: str, field: str, reason: str, problem: str) -> KubeError:
    kind = f"{resource.kind}.{resource.group}" if resource.group else resource.kind
    message = f'{kind} "{name}" is invalid: {field}: {problem}'
    details = {
        "name": name,
        **({"group": resource.group} if resource.group else {}),
        "kind": resource.kind,
        "causes": [{"reason": reason, "message": problem, "field": field}],
    }
    return KubeError(422, "Invalid", message, details)


def bad_request(message: str) -> KubeError:
    return KubeError(400, "BadRequest", message)


def unsupported_patch() -> KubeError:
    """A custom resource's answer to a strategic merge patch (it has no Go struct to merge by)."""
    message = (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )
    return KubeError(415, "UnsupportedMediaType", message)


def unauthorized() -> KubeError:
    return KubeError(401, "Unauthorized", "Unauthorized")


def method_not_allowed(method: str) -> KubeError:
    return KubeError(
        405,
        "MethodNotAllowed",
        f"the server does not allow this method on the requested resource ({method})",
    )


def path_not_found(path: str) -> KubeError:
    return KubeError(
        404,
        "NotFound",
        "the server could not find the requested resource",
        {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]},
    )
