"""Grafana's annotations as the deploy family's Annotator (bot/deploys/ports.py).

`POST /api/annotations` with tags `opsloop`, `service:<name>`, `version:<v>` and the step's
marker as a tag; a re-run looks the marker up with `GET /api/annotations?tags=<marker>` before
it adds one (Grafana's HTTP API docs, "Annotations API"). Failures become one
`IntegrationError("Grafana", ...)` naming what to fix.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.errors import IntegrationError, OutcomeUnknown

SYSTEM = "Grafana"


class GrafanaAnnotations:
    """Deploy steps as Grafana annotations (organisation-wide: every dashboard shows them
    through an annotation query on the `opsloop` tag)."""

    system = SYSTEM

    def __init__(self, url: str, token: str, *, timeout: float = 5.0) -> None:
        self._api = url.rstrip("/") + "/api/annotations"
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def annotate(
        self,
        service: str,
        version: str,
        text: str,
        at: float,
        *,
        marker: str,
        intend: Any,
    ) -> str:
        body = {
            "time": int(at * 1000),
            "tags": ["opsloop", f"service:{service}", f"version:{version}", marker],
            "text": text,
        }
        await intend()
        try:
            status, data = await self._call("POST", params=None, body=body)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as e:
            raise IntegrationError(SYSTEM, "Grafana is unreachable", retryable=True) from e
        except (aiohttp.ClientError, TimeoutError) as e:
            raise OutcomeUnknown(SYSTEM, "Grafana did not answer the annotation") from e
        _raise_for(status, data, "the annotation")
        if not isinstance(data, dict) or "id" not in data:
            raise IntegrationError(SYSTEM, "Grafana sent an answer the bot could not read")
        return str(data["id"])

    async def find_annotation(self, marker: str) -> str | None:
        params = [("tags", marker), ("limit", "1")]
        try:
            status, data = await self._call("GET", params=params, body=None)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise IntegrationError(SYSTEM, "Grafana is unreachable", retryable=True) from e
        _raise_for(status, data, "the annotation query")
        if not isinstance(data, list):
            raise IntegrationError(SYSTEM, "Grafana sent an answer the bot could not read")
        found = [a for a in data if isinstance(a, dict) and marker in (a.get("tags") or [])]
        return str(found[0]["id"]) if found else None

    async def _call(
        self, method: str, *, params: list[tuple[str, str]] | None, body: Any
    ) -> tuple[int, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        async with self._session.request(method, self._api, params=params, json=body) as answer:
            try:
                data = await answer.json(content_type=None)
            except ValueError:
                data = None
            return answer.status, data


def _raise_for(status: int, data: Any, what: str) -> None:
    if status < 300:
        return
    reason = data.get("message") if isinstance(data, dict) else None
    said = f": {reason}" if isinstance(reason, str) and reason else ""
    if status in (401, 403):
        raise IntegrationError(
            SYSTEM,
            f"Grafana refused {what} ({status}{said}); check OPSLOOP_GRAFANA_TOKEN (a service "
            "account with the annotations:write permission, e.g. the Editor role)",
        )
    raise IntegrationError(
        SYSTEM, f"Grafana answered {status} to {what}{said}", retryable=status >= 500
    )
