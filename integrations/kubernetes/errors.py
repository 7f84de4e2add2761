"""The one place where the Kubernetes client's failures become the bot's `IntegrationError`.

Every message names the object and what was refused, in words a person can act on (the verb
and resource a Role lacks, the object that is missing), and never carries a credential: the
API server's own `Status.message` is passed on (it names objects and users, not tokens), the
client's exceptions are not (a kubeconfig error may quote the file).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.errors import IntegrationError

SYSTEM = "Kubernetes"
MAX_REASON = 300  # characters of the API server's own explanation passed on
T = TypeVar("T")


@dataclass(frozen=True)
class Kind:
    """A resource type, as the REST paths and RBAC name it."""

    name: str  # "Rollout"
    group: str  # "argoproj.io"
    version: str  # "v1alpha1"
    plural: str  # "rollouts"


ROLLOUT = Kind("Rollout", "argoproj.io", "v1alpha1", "rollouts")
DEPLOYMENT = Kind("Deployment", "apps", "v1", "deployments")
# The controllers whose custom resources opsloop reads: asked of a 404 of the whole resource.
_INSTALLED = {ROLLOUT.group: "is Argo Rollouts installed?", "flagger.app": "is Flagger installed?"}


@dataclass(frozen=True)
class Call:
    """What a request was about, for its error message."""

    verb: str  # as RBAC says it: get, list, watch, patch, create, delete
    kind: Kind
    namespace: str
    name: str | None = None
    subresource: str | None = None

    @property
    def resource(self) -> str:
        """As a Role writes it, e.g. `rollouts/status`."""
        return self.kind.plural + (f"/{self.subresource}" if self.subresource else "")

    @property
    def obj(self) -> str:
        """The object in words, e.g. "Rollout shop/shop"."""
        if self.name is None:
            return f"{self.kind.plural} in namespace {self.namespace}"
        return f"{self.kind.name} {self.namespace}/{self.name}"


class Conflict(IntegrationError):
    """409: the object changed between our read and our write; read it again and retry."""


class Unauthorized(IntegrationError):
    """401: the credentials were refused (an expired token, say)."""


class NotFound(IntegrationError):
    """404: the object (or its namespace, or its resource type) does not exist."""


def clip(text: str, limit: int = MAX_REASON) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_message(body: Any) -> str:
    """The `message` of a Kubernetes `Status` body, or ""."""
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    try:
        data = json.loads(body) if isinstance(body, str) else body
    except ValueError:
        return ""
    return clip(str(data.get("message", ""))) if isinstance(data, dict) else ""


def from_status(status: int, body: Any, call: Call, where: str) -> IntegrationError:
    """The bot's error for an HTTP error answer of the API server to `call`."""
    said = status_message(body)
    if status == 401:
        return Unauthorized(
            SYSTEM,
            f"the API server at {where} refused opsloop's credentials (401 Unauthorized); "
            "check OPSLOOP_KUBECONFIG (or the pod's service account token)",
        )
    if status == 403:
        return IntegrationError(
            SYSTEM,
            f"opsloop may not {call.verb} {call.obj} (403 Forbidden): its account lacks "
            f"`{call.verb}` on `{call.resource}` (API group `{call.kind.group}`) in namespace "
            f"`{call.namespace}`; grant it in opsloop's Role (README: Kubernetes access)",
        )
    if status == 404:
        if call.name is not None and f'"{call.name}" not found' in said:
            return NotFound(SYSTEM, f"{call.obj} was not found (404)")
        if "could not find the requested resource" in said or not said:
            return NotFound(
                SYSTEM,
                f"{call.obj}: the API server does not serve `{call.resource}` of "
                f"{call.kind.group}/{call.kind.version} (404); "
                + _INSTALLED.get(call.kind.group, "is the namespace right?"),
            )
        return NotFound(SYSTEM, f"{call.obj} was not found (404: {said})")
    if status == 409:
        return Conflict(SYSTEM, f"{call.obj} changed while opsloop wrote it (409 Conflict)")
    if status == 422 and ("test failed" in said or "testing value" in said):
        # A JSON patch's `test` op: the container is no longer where opsloop read it.
        return Conflict(SYSTEM, f"{call.obj} changed while opsloop wrote it ({said})")
    if status in (429, 500, 502, 503, 504):
        return IntegrationError(
            SYSTEM,
            f"the API server at {where} answered {status} to {call.verb} {call.obj}"
            + (f": {said}" if said else ""),
            retryable=True,
        )
    return IntegrationError(
        SYSTEM,
        f"the API server refused to {call.verb} {call.obj} ({status})"
        + (f": {said}" if said else ""),
    )


def from_exception(
    e: BaseException, call: Call, where: str, timeout: float
) -> IntegrationError | None:
    """The bot's error for a failure of the client or the connection; None: not one of those."""
    import aiohttp
    from kubernetes_asyncio.client.exceptions import ApiException

    if isinstance(e, IntegrationError):
        return e
    if isinstance(e, ApiException):
        if not e.status:  # the client refused to build the request: our mistake, said plainly
            return IntegrationError(
                SYSTEM, f"could not {call.verb} {call.obj}: {clip(str(e.reason))}"
            )
        return from_status(int(e.status), e.body or e.reason or "", call, where)
    if isinstance(e, aiohttp.ClientResponseError):
        return from_status(e.status, e.message, call, where)
    if isinstance(e, aiohttp.ClientConnectorCertificateError | ssl.SSLCertVerificationError):
        return IntegrationError(
            SYSTEM,
            f"the API server at {where} has a certificate opsloop does not trust; check the "
            "kubeconfig's certificate-authority",
        )
    if isinstance(e, TimeoutError | asyncio.TimeoutError):
        return IntegrationError(
            SYSTEM, f"the API server at {where} did not answer within {timeout:g} s", retryable=True
        )
    if isinstance(e, aiohttp.ClientError | OSError):
        return IntegrationError(SYSTEM, f"the API server at {where} is unreachable", retryable=True)
    return None


def config_error(e: BaseException, source: str) -> IntegrationError:
    """The kubeconfig (or the service account) could not be read; the file's text is never
    quoted, since it may hold a token."""
    if isinstance(e, FileNotFoundError):
        return IntegrationError(SYSTEM, f"no kubeconfig at {source} (set OPSLOOP_KUBECONFIG)")
    return IntegrationError(
        SYSTEM,
        f"the kubeconfig at {source} could not be used ({type(e).__name__}); check it with "
        "`kubectl --kubeconfig <file> version`",
    )


async def on_fresh_read(attempt: Callable[[], Awaitable[T]], tries: int = 3) -> T:
    """Run `attempt` (which reads the object afresh, then writes) again after a conflict."""
    for n in range(tries):
        try:
            return await attempt()
        except Conflict:
            if n == tries - 1:
                raise
    raise AssertionError("unreachable")
