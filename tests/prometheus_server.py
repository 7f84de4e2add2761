"""A real Prometheus for tests: free loopback port, temporary directory, stopped by its own PID.

It scrapes one target every second as the job "opsloop" (the name deploy/monitoring/'s rules
expect) and evaluates the rule files it is given.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.servers import free_port, start_http_server, stop_process


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


@dataclass
class PrometheusServer:
    binary: str
    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, target: str, rule_files: list[Path]) -> None:
        """Scrape `target` (host:port) as job "opsloop" every second, with `rule_files`."""
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(f) for f in rule_files],
            "scrape_configs": [{"job_name": "opsloop", "static_configs": [{"targets": [target]}]}],
        }
        config_file = self.directory / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.process = start_http_server(
            [
                self.binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            self.directory / "prometheus.log",
            self.url + "/-/ready",
        )

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    async def get(self, path: str, **params: str) -> dict[str, Any]:
        async with aiohttp.ClientSession() as http, http.get(self.url + path, params=params) as r:
            body: dict[str, Any] = await r.json()
            return body

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector `expr` gives now (empty when nothing matches)."""
        answer = await self.get("/api/v1/query", query=expr)
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result
