"""The Prometheus emulator's state and routes (see the package's docstring)."""

from __future__ import annotations

import math
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.serving import served

VERSION = "2.45.0-emulated"
_MATCHER = re.compile(r'\b(service|app|version)\s*=\s*"((?:[^"\\]|\\.)*)"')


@dataclass
class Series:
    """What one version of one service shows."""

    error_ratio: float  # the share of 5xx responses
    p99_seconds: float


HEALTHY = Series(error_ratio=0.008, p99_seconds=0.21)
REGRESSED = Series(error_ratio=0.024, p99_seconds=0.42)


@dataclass
class PrometheusEmulator:
    series: dict[tuple[str, str], Series] = field(default_factory=dict)
    down: bool = False
    queries: list[str] = field(default_factory=list)
    base_url: str = ""

    def set(self, service: str, version: str, **values: float) -> None:
        current = self.shown(service, version)
        self.series[(service, version)] = Series(
            error_ratio=values.get("error_ratio", current.error_ratio),
            p99_seconds=values.get("p99_seconds", current.p99_seconds),
        )

    def shown(self, service: str, version: str) -> Series:
        found = self.series.get((service, version))
        if found is not None:
            return found
        return REGRESSED if "bad" in version.lower() else HEALTHY

    def answer(self, query: str, now: float) -> list[dict[str, Any]]:
        """The instant vector `query` gives at `now`: one sample, or none."""
        matchers = {k: v.replace('\\"', '"') for k, v in _MATCHER.findall(query)}
        service = matchers.get("service") or matchers.get("app")
        version = matchers.get("version")
        if not service or not version:
            return []
        series = self.shown(service, version)
        if "http_request_duration_seconds" in query:
            value = series.p99_seconds
        elif "http_requests_total" in query:
            value = series.error_ratio
        else:
            return []
        # A little movement, as live traffic has: within 5% either way, over minutes.
        value *= 1 + 0.05 * math.sin(now / 60)
        return [{"metric": {}, "value": [now, f"{value:.6g}"]}]

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/v1/query", self._query)
        app.router.add_get("/api/v1/status/buildinfo", self._buildinfo)
        app.router.add_get("/-/ready", self._ready)
        return app

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        async with served(self.make_app(), host, port) as url:
            self.base_url = url
            yield url

    async def _query(self, request: web.Request) -> web.Response:
        form = await request.post() if request.method == "POST" else request.query
        query = str(form.get("query", ""))
        self.queries.append(query)
        if self.down:
            return _error(503, "unavailable", "the emulated Prometheus is down")
        if not query.strip():
            return _error(400, "bad_data", 'invalid parameter "query": empty query')
        result = self.answer(query, time.time())
        return web.json_response(
            {"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    async def _buildinfo(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "success", "data": {"version": VERSION}})

    async def _ready(self, _: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=503, text="Service Unavailable")
        return web.Response(text="Prometheus Server is Ready.\n")


def _error(status: int, kind: str, message: str) -> web.Response:
    body = {"status": "error", "errorType": kind, "error": message}
    return web.json_response(body, status=status)
