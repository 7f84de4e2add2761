"""A tiny Prometheus exporter the test controls: gauges per service and version, served on a
free port for a real Prometheus (tests/prometheus_server.py) to scrape.

    async with running_exporter() as exporter:
        exporter.set("app_error_ratio", 0.02, service="api", version="1")
        prometheus.start(target=exporter.target, rule_files=[])
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from tests.harness import start_site


@dataclass
class Exporter:
    target: str = ""  # host:port, as Prometheus's static_configs take it
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)

    def set(self, metric: str, value: float, **labels: str) -> None:
        self.values[(metric, tuple(sorted(labels.items())))] = value

    def text(self) -> str:
        lines = []
        for metric in sorted({m for m, _ in self.values}):
            lines.append(f"# TYPE {metric} gauge")
            for (name, labels), value in sorted(self.values.items()):
                if name == metric:
                    pairs = ",".join(f'{k}="{v}"' for k, v in labels)
                    lines.append(f"{metric}{{{pairs}}} {value}")
        return "\n".join(lines) + "\n"


@asynccontextmanager
async def running_exporter() -> AsyncIterator[Exporter]:
    exporter = Exporter()

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=exporter.text(), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner, url = await start_site(app)
    exporter.target = url.removeprefix("http://")
    try:
        yield exporter
    finally:
        await runner.cleanup()
