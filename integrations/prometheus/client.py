"""Prometheus's HTTP API as the Measures port: one instant query, one number.

`GET /api/v1/query?query=...` answers `{"status": "success", "data": {"resultType": ...,
"result": ...}}`: a scalar is `[<time>, "<value>"]`, a vector a list of samples each with its
`value`. A query must give one number: a scalar, or a vector of one sample; an empty vector,
or NaN, is "nothing" (None). A failure answers `{"status": "error", "errorType": ...,
"error": ...}` (400 bad_data for a query that does not parse, 422 execution, 503 timeout).
One try, bounded by `timeout`: the approval path asks again on its own schedule and must not
wait.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import aiohttp
from yarl import URL

from bot.errors import IntegrationError

SYSTEM = "Prometheus"
_MAX_REASON = 200  # characters of Prometheus's own explanation passed on to a person


class PrometheusClient:
    """Instant queries against one Prometheus (or anything serving its query API: Thanos,
    Mimir, VictoriaMetrics)."""

    def __init__(self, base_url: str, *, timeout: float = 3.0) -> None:
        url = URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"not an http(s) URL: {url.with_user(None).with_password(None)}")
        # Credentials in the URL (a proxy's basic auth) go into a header and nowhere else, so
        # neither our messages nor aiohttp's exception texts carry them.
        self._headers = {"Accept": "application/json", "User-Agent": "opsloop"}
        if url.user is not None:
            pair = f"{url.user}:{url.password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        bare = url.with_user(None).with_password(None).with_query(None).with_fragment(None)
        self.base = str(bare).rstrip("/")
        host = f"[{url.host}]" if ":" in url.host else url.host
        self._where = f"{host}:{url.port}"
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def value(self, query: str) -> float | None:
        """The one number `query` gives now; None for an empty answer or NaN."""
        status, text = await self._get("/api/v1/query", {"query": query})
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise IntegrationError(SYSTEM, f"Prometheus answered {status} without JSON")
        if body.get("status") != "success":
            kind = body.get("errorType") or f"HTTP {status}"
            reason = " ".join(str(body.get("error") or "no reason given").split())
            if len(reason) > _MAX_REASON:
                reason = reason[: _MAX_REASON - 1] + "…"
            raise IntegrationError(SYSTEM, f"Prometheus refused the query ({kind}): {reason}")
        return _one_number(body.get("data"))

    async def ready(self) -> str:
        """`opsloop check`: Prometheus's version (`/api/v1/status/buildinfo`)."""
        status, text = await self._get("/api/v1/status/buildinfo", {})
        if status == 401 or status == 403:
            raise IntegrationError(SYSTEM, f"Prometheus refused the credentials ({status})")
        try:
            version = json.loads(text)["data"]["version"]
        except (ValueError, KeyError, TypeError):
            message = f"Prometheus answered {status} without its version"
            raise IntegrationError(SYSTEM, message) from None
        return f"{self._where} answers, Prometheus {version}"

    async def _get(self, path: str, params: dict[str, str]) -> tuple[int, str]:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers)
        try:
            async with self._session.get(
                self.base + path, params=params, timeout=aiohttp.ClientTimeout(total=self._timeout)
            ) as response:
                return response.status, await response.text(errors="replace")
        except TimeoutError:
            raise IntegrationError(
                SYSTEM, f"Prometheus did not answer within {self._timeout:g} s", retryable=True
            ) from None
        except aiohttp.ClientSSLError:
            raise IntegrationError(
                SYSTEM, f"no trusted TLS connection to Prometheus at {self._where}"
            ) from None
        except aiohttp.ClientError:
            raise IntegrationError(
                SYSTEM, f"Prometheus at {self._where} is unreachable", retryable=True
            ) from None


def _one_number(data: Any) -> float | None:
    if not isinstance(data, dict):
        raise IntegrationError(SYSTEM, "Prometheus sent an answer the bot could not read")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _sample(result)
    if kind == "vector" and isinstance(result, list):
        if not result:
            return None
        if len(result) > 1:
            raise IntegrationError(
                SYSTEM,
                f"the query gave {len(result)} series, not one number; aggregate it "
                "(e.g. sum(...) or max(...))",
            )
        sample = result[0]
        return _sample(sample.get("value") if isinstance(sample, dict) else None)
    raise IntegrationError(
        SYSTEM, f"the query gave a {kind or 'strange'} result, not one number (an instant vector)"
    )


def _sample(pair: Any) -> float | None:
    try:
        number = float(pair[1])
    except (TypeError, ValueError, IndexError):
        raise IntegrationError(SYSTEM, "Prometheus sent a sample the bot could not read") from None
    return None if math.isnan(number) else number
