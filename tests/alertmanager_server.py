"""A real Prometheus Alertmanager for tests: free loopback port, temporary directory, own PID.

Tests ask for the `alertmanager` fixture (tests/fixtures.py) by name:

    async def test_x(alertmanager: AlertmanagerServer) -> None:
        alertmanager.configure("http://127.0.0.1:PORT/hooks/alertmanager", "token")
        alertmanager.reload()
        await alertmanager.post_alerts([AlertmanagerServer.alert("HighLatency")])
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.servers import free_port, start_http_server, stop_process

READY_WITHIN = 10.0


def alertmanager_binary() -> str | None:
    """Debian names the binary prometheus-alertmanager; upstream tarballs call it alertmanager."""
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class AlertmanagerServer:
    """An Alertmanager process on 127.0.0.1 with one route to one webhook receiver, "bot"."""

    binary: str
    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    # e.g. "/api/alertmanager/grafana": the API served where Grafana serves its own.
    route_prefix: str = ""

    @property
    def url(self) -> str:
        """The API's root: host, port and route prefix."""
        return f"http://127.0.0.1:{self.port}{self.route_prefix}"

    @property
    def config_file(self) -> Path:
        return self.directory / "am.yml"

    @property
    def log_file(self) -> Path:
        return self.directory / "alertmanager.log"

    def configure(
        self,
        webhook_url: str | None,
        bearer_token: str | None,
        *,
        group_wait: str = "1s",
        group_interval: str = "2s",
        repeat_interval: str = "1h",
        group_by: Sequence[str] = ("alertname",),
    ) -> None:
        """Write am.yml; `webhook_url=None` gives a receiver that sends nothing. Then reload()."""
        receiver: dict[str, Any] = {"name": "bot"}
        if webhook_url is not None:
            webhook: dict[str, Any] = {"url": webhook_url, "send_resolved": True, "max_alerts": 0}
            if bearer_token is not None:
                webhook["http_config"] = {"authorization": {"credentials": bearer_token}}
            receiver["webhook_configs"] = [webhook]
        config = {
            "route": {
                "receiver": "bot",
                "group_by": list(group_by),
                "group_wait": group_wait,
                "group_interval": group_interval,
                "repeat_interval": repeat_interval,
            },
            "receivers": [receiver],
        }
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))

    def start(self) -> None:
        """Start on a free port and wait until /-/ready answers 200."""
        if not self.config_file.exists():
            self.configure(None, None)
        self.port = self.port or free_port()
        self.process = start_http_server(
            [
                self.binary,
                f"--config.file={self.config_file}",
                f"--storage.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                # Empty: no gossip listener on 0.0.0.0:9094.
                "--cluster.listen-address=",
                f"--web.external-url={self.url}",
                *([f"--web.route-prefix={self.route_prefix}"] if self.route_prefix else []),
            ],
            self.log_file,
            self.url + "/-/ready",
            within=READY_WITHIN,
        )

    def reload(self) -> None:
        """Make the running process read am.yml again (after configure())."""
        request = urllib.request.Request(self.url + "/-/reload", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                if answer.status == 200:
                    return
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"alertmanager refused am.yml: {e.read().decode()}") from e
        raise RuntimeError("alertmanager did not reload")

    def stop(self) -> None:
        """Terminate by PID and wait."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    async def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """POST /api/v2/alerts, as Prometheus does."""
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url + "/api/v2/alerts", json=list(alerts)) as answer,
        ):
            if answer.status != 200:
                raise RuntimeError(f"alertmanager answered {answer.status}: {await answer.text()}")

    @staticmethod
    def alert(
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        resolved: bool = False,
        starts_at: datetime | None = None,
    ) -> dict[str, Any]:
        """One postable alert; `resolved` sets endsAt to now, so Alertmanager resolves it.

        Without `starts_at` Alertmanager uses the time it receives the alert. Re-posting an
        alert resolved merges it into the firing one because endsAt falls inside its span.
        """
        alert: dict[str, Any] = {
            "labels": {"alertname": name, **(labels or {})},
            "annotations": dict(annotations or {}),
        }
        if starts_at is not None:
            alert["startsAt"] = _rfc3339(starts_at)
        if resolved:
            alert["endsAt"] = _rfc3339(datetime.now(UTC))
        return alert
