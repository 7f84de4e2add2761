"""kubernetes-asyncio behind one small object: connected on first use, every call bounded in
time, its failures turned into `IntegrationError("Kubernetes", ...)` (errors.py) here.

Rollouts and Deployments are both read and written as plain dicts through the generic
`/apis/<group>/<version>/namespaces/<ns>/<plural>` paths (the client's CustomObjectsApi), so
an object is what the API server sent, with no model in between; each patch says its content
type explicitly (a JSON patch, or a JSON merge patch: strategic merge does not work on CRDs).

`KubeClient` is public: another package (the Flagger gate) may use it to read and patch a
Deployment (`get_deployment`, `patch_deployment`; base.py's `set_image_tag` sets a container's
image the way the deployers do).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from bot.errors import IntegrationError
from integrations.kubernetes.errors import (
    DEPLOYMENT,
    SYSTEM,
    Call,
    Kind,
    NotFound,
    Unauthorized,
    config_error,
    from_exception,
    from_status,
)

T = TypeVar("T")
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def kubeconfig_source(kubeconfig: Path | None) -> Path | None:
    """Where the credentials come from: OPSLOOP_KUBECONFIG; else, in a pod, its service
    account (None); else KUBECONFIG; else ~/.kube/config."""
    if kubeconfig is not None:
        return kubeconfig
    if os.environ.get("KUBERNETES_SERVICE_HOST") and (SERVICE_ACCOUNT / "token").is_file():
        return None
    found = os.environ.get("KUBECONFIG")
    return Path(found) if found else Path.home() / ".kube" / "config"


class KubeClient:
    """One cluster, as a kubeconfig (and context) or the pod's service account names it."""

    def __init__(
        self,
        kubeconfig: Path | None = None,
        context: str | None = None,
        *,
        timeout: float = 10.0,
        budget: float = 24.0,
    ) -> None:
        """`timeout`: seconds one request may take; `budget`: one call, its retries included
        (so that a person hears within 30 s)."""
        self.source = kubeconfig_source(kubeconfig)
        self.context = context
        self.timeout = timeout
        self.budget = budget
        self.where = "the cluster"  # the API server's address once the config is read
        self._api: Any = None  # kubernetes_asyncio ApiClient
        self._lock = asyncio.Lock()

    @property
    def described(self) -> str:
        source = "the pod's service account" if self.source is None else str(self.source)
        return source + (f", context {self.context}" if self.context else "")

    async def _client(self) -> Any:
        async with self._lock:
            if self._api is None:
                self._api = await self._connect()
            return self._api

    async def _connect(self) -> Any:
        from kubernetes_asyncio import config
        from kubernetes_asyncio.client import ApiClient, Configuration

        configuration = Configuration()
        try:
            if self.source is None:
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            else:
                if not self.source.is_file():
                    raise FileNotFoundError(str(self.source))
                await config.load_kube_config(
                    config_file=str(self.source),
                    context=self.context,
                    client_configuration=configuration,
                    persist_config=False,
                )
        except Exception as e:
            raise config_error(e, self.described) from None
        parts = urlsplit(str(configuration.host))
        self.where = parts.netloc.rsplit("@", 1)[-1] or str(configuration.host)
        return ApiClient(configuration=configuration)

    async def close(self) -> None:
        async with self._lock:
            if self._api is not None:
                api, self._api = self._api, None
                await api.close()

    # -- one request, bounded and translated -------------------------------------------------

    async def _call(self, call: Call, request: Callable[[Any], Awaitable[T]]) -> T:
        deadline = time.monotonic() + self.budget
        pause = 0.2
        reloaded = False
        while True:
            api = await self._client()
            try:
                return await asyncio.wait_for(request(api), self.timeout)
            except Exception as e:
                error = from_exception(e, call, self.where, self.timeout)
                if error is None:
                    raise
                if isinstance(error, Unauthorized) and not reloaded:
                    # A kubeconfig's exec or OIDC token expires and kubernetes-asyncio does
                    # not renew it by itself: read the config again (which runs the plugin
                    # again) and try once more.
                    reloaded = True
                    await self._forget(api)
                    continue
                if not error.retryable or time.monotonic() + pause >= deadline:
                    raise error from None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)

    async def _forget(self, api: Any) -> None:
        """Drop the connection `api`, so that the next call reads the config again."""
        async with self._lock:
            if self._api is api:
                self._api = None
        await api.close()

    @staticmethod
    def _objects(api: Any) -> Any:
        from kubernetes_asyncio.client import CustomObjectsApi

        return CustomObjectsApi(api)

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        call = Call("get", kind, namespace, name)
        return await self._call(
            call,
            lambda api: self._objects(api).get_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, name
            ),
        )

    async def find(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return await self.get(kind, namespace, name)
        except NotFound as e:
            if "was not found" in e.message:
                return None
            raise

    async def patch(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        body: Any,
        *,
        content_type: str,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """PATCH the object (or its `status` / `scale` subresource) with `content_type`."""
        call = Call("patch", kind, namespace, name, subresource)

        def send(api: Any) -> Awaitable[dict[str, Any]]:
            objects = self._objects(api)
            method = {
                None: objects.patch_namespaced_custom_object,
                "status": objects.patch_namespaced_custom_object_status,
                "scale": objects.patch_namespaced_custom_object_scale,
            }[subresource]
            args = (kind.group, kind.version, namespace, kind.plural, name, body)
            result: Awaitable[dict[str, Any]] = method(*args, _content_type=content_type)
            return result

        return await self._call(call, send)

    async def create(self, kind: Kind, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body.get("metadata", {}).get("name", ""))
        call = Call("create", kind, namespace, name or None)
        return await self._call(
            call,
            lambda api: self._objects(api).create_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, body
            ),
        )

    async def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        """Delete the object (its pods go with it); False when it was not there."""
        call = Call("delete", kind, namespace, name)
        try:
            await self._call(
                call,
                lambda api: self._objects(api).delete_namespaced_custom_object(
                    kind.group,
                    kind.version,
                    namespace,
                    kind.plural,
                    name,
                    propagation_policy="Background",
                ),
            )
        except NotFound as e:
            if "was not found" in e.message:
                return False
            raise
        return True

    async def may(
        self, verb: str, kind: Kind, namespace: str, name: str | None, subresource: str = ""
    ) -> bool:
        """Whether opsloop's account may `verb` the object (a SelfSubjectAccessReview)."""
        call = Call("create", _SSAR, "")

        async def send(api: Any) -> Any:
            from kubernetes_asyncio import client

            attributes = client.V1ResourceAttributes(
                verb=verb,
                group=kind.group,
                resource=kind.plural,
                subresource=subresource,
                namespace=namespace,
                name=name or "",
            )
            spec = client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
            review = client.V1SelfSubjectAccessReview(spec=spec)
            return await client.AuthorizationV1Api(api).create_self_subject_access_review(review)

        review = await self._call(call, send)
        return bool(review.status is not None and review.status.allowed)

    async def version(self) -> str:
        """The API server's version (`GET /version`), proving that it answers."""
        call = Call("get", _VERSION, "")

        async def send(api: Any) -> Any:
            return await api.call_api(
                "/version",
                "GET",
                header_params={"Accept": "application/json"},
                response_types_map={200: "object"},
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
            )

        info = await self._call(call, send)
        return str(info.get("gitVersion", "unknown")) if isinstance(info, dict) else "unknown"

    # -- watching ------------------------------------------------------------------------------

    async def list(
        self, kind: Kind, namespace: str, name: str
    ) -> tuple[dict[str, Any] | None, str]:
        """The one object named `name` (None: absent) and the list's resourceVersion, to
        watch from."""
        found = await self._listing(Call("list", kind, namespace, name))
        items = found.get("items") or []
        version = str((found.get("metadata") or {}).get("resourceVersion", ""))
        return (items[0] if items else None), version

    async def _listing(self, call: Call, **options: Any) -> Any:
        """GET the list of `call`'s kind in its namespace, narrowed to the object it names."""
        kind = call.kind
        return await self._call(
            call,
            lambda api: self._objects(api).list_namespaced_custom_object(
                kind.group,
                kind.version,
                call.namespace,
                kind.plural,
                field_selector=f"metadata.name={call.name}",
                **options,
            ),
        )

    async def watch(
        self, kind: Kind, namespace: str, name: str, since: str, seconds: int
    ) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        """The events (type, object) of the object `name` after resourceVersion `since`, for
        at most `seconds`. An `ERROR` event (410 Gone: `since` is too old) is yielded as is."""
        call = Call("watch", kind, namespace, name)
        response = await self._listing(
            call,
            resource_version=since,
            allow_watch_bookmarks=True,
            timeout_seconds=seconds,
            watch=True,
            _preload_content=False,
            _request_timeout=seconds + self.timeout,
        )
        try:
            if response.status >= 400:
                raise from_status(response.status, await response.read(), call, self.where)
            while True:
                try:
                    line = await response.content.readline()
                except Exception as e:
                    error = from_exception(e, call, self.where, self.timeout)
                    if error is None:
                        raise
                    raise error from None
                if not line:
                    return
                try:
                    event = json.loads(line)
                except ValueError:
                    raise IntegrationError(
                        SYSTEM, f"the watch of {call.obj} sent no JSON"
                    ) from None
                yield str(event.get("type", "")), dict(event.get("object") or {})
        finally:
            response.close()  # a watch cut short must not go back to the pool half read

    # -- for other packages: a Deployment --------------------------------------------------------

    async def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        return await self.get(DEPLOYMENT, namespace, name)

    async def patch_deployment(
        self, namespace: str, name: str, body: Any, *, content_type: str = MERGE_PATCH
    ) -> dict[str, Any]:
        return await self.patch(DEPLOYMENT, namespace, name, body, content_type=content_type)


_SSAR = Kind("SelfSubjectAccessReview", "authorization.k8s.io", "v1", "selfsubjectaccessreviews")
_VERSION = Kind("version", "", "", "version")


__all__ = ["JSON_PATCH", "MERGE_PATCH", "KubeClient", "kubeconfig_source"]
