"""The Grafana emulator: health, the token's user, annotations, and the Alertmanager shim."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.serving import served

AM_PREFIX = "/api/alertmanager/grafana"
VERSION = "11.3.0"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    body: Any
    authorized: bool


def _error(status: int, message: str) -> web.Response:
    # Grafana's API error body: {"message": ...} (pkg/api/response), with errutil's extras.
    return web.json_response({"message": message, "traceID": ""}, status=status)


@dataclass
class GrafanaEmulator:
    token: str = "glsa_emulated_service_account_token"
    alertmanager_url: str | None = None  # a real Alertmanager's URL, its route prefix included
    annotations: list[dict[str, Any]] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    _failures: list[int] = field(default_factory=list)
    _session: aiohttp.ClientSession | None = None

    def fail(self, status: int, *, times: int = 1) -> None:
        """The next `times` API requests answer `status` (e.g. 503: Grafana unavailable)."""
        self._failures += [status] * times

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_get("/api/health", self._health)
        app.router.add_get("/api/user", self._guarded(self._user))
        app.router.add_post("/api/annotations", self._guarded(self._add_annotation))
        app.router.add_get("/api/annotations", self._guarded(self._find_annotations))
        app.router.add_route("*", AM_PREFIX + "/api/v2/{tail:.*}", self._guarded(self._shim))
        self._session = aiohttp.ClientSession()
        try:
            async with served(app, host, port) as url:
                yield url
        finally:
            await self._session.close()

    def _guarded(self, handler: Any) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            given = request.headers.get("Authorization", "")
            authorized = given == f"Bearer {self.token}"
            body: Any = None
            if request.can_read_body:
                try:
                    body = await request.json()
                except ValueError:
                    body = (await request.read()).decode(errors="replace")
            self.requests.append(
                RecordedRequest(
                    request.method, request.path, request.query_string, body, authorized
                )
            )
            if not authorized:
                return _error(401, "Invalid API key")
            if self._failures:
                return _error(self._failures.pop(0), "Grafana is unavailable")
            response: web.StreamResponse = await handler(request, body)
            return response

        return handle

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"database": "ok", "version": VERSION, "commit": "emulated"})

    async def _user(self, request: web.Request, body: Any) -> web.Response:
        return web.json_response({"id": 2, "login": "sa-1-opsloop", "isGrafanaAdmin": False})

    async def _add_annotation(self, request: web.Request, body: Any) -> web.Response:
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return _error(400, "bad request data")
        tags = body.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            return _error(400, "bad request data")
        now_ms = int(time.time() * 1000)
        annotation = {
            "id": len(self.annotations) + 1,
            "time": int(body.get("time") or now_ms),
            "timeEnd": int(body.get("timeEnd") or body.get("time") or now_ms),
            "tags": tags,
            "text": body["text"],
            "dashboardUID": body.get("dashboardUID", ""),
        }
        self.annotations.append(annotation)
        return web.json_response({"message": "Annotation added", "id": annotation["id"]})

    async def _find_annotations(self, request: web.Request, body: Any) -> web.Response:
        # Grafana's default (matchAny=false): an annotation with every tag asked for.
        wanted = set(request.query.getall("tags", []))
        limit = int(request.query.get("limit", "100"))
        found = [a for a in reversed(self.annotations) if wanted <= set(a["tags"])]
        return web.json_response(found[:limit])

    async def _shim(self, request: web.Request, body: Any) -> web.Response:
        if self.alertmanager_url is None or self._session is None:
            return _error(404, "the Alertmanager of this organisation is not ready")
        tail = request.match_info["tail"]
        url = f"{self.alertmanager_url.rstrip('/')}/api/v2/{tail}"
        try:
            async with self._session.request(
                request.method,
                url,
                params=list(request.query.items()),
                json=body if request.method in ("POST", "PUT") else None,
            ) as answer:
                text = await answer.text()
                status = answer.status
        except aiohttp.ClientError:
            return _error(500, "failed to reach the Alertmanager")
        if request.method == "POST" and tail == "silences" and status == 200:
            return web.Response(status=202, text=text, content_type="application/json")
        if request.method == "DELETE" and status == 200:
            return web.json_response({"message": "silence deleted"})
        return web.Response(status=status, text=text, content_type="application/json")
