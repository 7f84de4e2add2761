"""JiraClient: Jira's REST API over aiohttp.

No SDK: opsloop needs a dozen endpoints, the `jira` package is synchronous (requests) and would
need a thread per call, and an async client keeps every call inside one time budget (the person
hears within 30 s). Cloud (`OPSLOOP_JIRA_EMAIL` set) is `/rest/api/3` with basic auth (e-mail and
API token) and descriptions in Atlassian Document Format; Data Center (no e-mail) is
`/rest/api/2` with the personal access token as a bearer token and plain-text descriptions.

Reads are retried on 429 (after its Retry-After), 5xx and time-outs within the budget. A create
is retried only on 429 and 503, which Jira answers before doing anything; any other failure
after sending raises OutcomeUnknown, so the caller looks for the issue instead (bot/once.py).
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import aiohttp

from bot.errors import IntegrationError
from integrations.jira import errors

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_NOT_DONE = frozenset({429, 503})  # answers that prove a create did not happen


class JiraClient:
    """A connection to one Jira, as opsloop's account."""

    system = errors.SYSTEM

    def __init__(
        self,
        url: str,
        token: str,
        *,
        email: str | None = None,
        timeout: float = 10.0,
        budget: float = 24.0,
    ) -> None:
        self.base = url.rstrip("/")
        self.cloud = bool(email)
        self.api = f"{self.base}/rest/api/{3 if self.cloud else 2}"
        credentials = base64.b64encode(f"{email}:{token}".encode()).decode()
        self._headers = {
            "Accept": "application/json",
            "Authorization": f"Basic {credentials}" if email else f"Bearer {token}",
        }
        self._timeout = timeout
        self._budget = budget
        self._session: aiohttp.ClientSession | None = None
        self._field_names: dict[str, str] | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        return self._session

    async def call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        creates: bool = False,
    ) -> Any:
        """One API call (path under /rest/api/N), retried as the module says; the answer's
        JSON (None when empty), or the IntegrationError saying what went wrong with `what`."""
        deadline = time.monotonic() + self._budget
        delay = 0.5
        while True:
            try:
                async with self._http().request(
                    method, self.api + path, json=json, params=params
                ) as response:
                    body = await _body(response)
                    status, wait = response.status, _retry_after(response)
            except (TimeoutError, aiohttp.ClientError) as e:
                if creates and not isinstance(e, aiohttp.ClientConnectorError):
                    raise errors.outcome_unknown() from None
                if time.monotonic() + delay >= deadline:
                    raise errors.unavailable() from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 4.0)
                continue
            if status < 400:
                return body
            retry = status in (_NOT_DONE if creates else _RETRY_STATUSES)
            if creates and status >= 500 and status not in _NOT_DONE:
                raise errors.outcome_unknown()
            pause = wait if wait is not None else delay
            if not retry or time.monotonic() + pause >= deadline:
                if status >= 500:
                    raise errors.unavailable()
                raise await self._refused(status, body, what)
            await asyncio.sleep(pause)
            delay = min(delay * 2, 4.0)

    async def _refused(self, status: int, body: Any, what: str) -> Exception:
        """The refusal in words; a required custom field is named as the project's form
        names it ("Team"), not by its id."""
        _, by_field = errors.reasons(body)
        custom = [f for f in by_field if f.startswith("customfield_")]
        if status == 400 and custom:
            names = await self.field_names()
            shown = ", ".join(f"“{names.get(f, f)}” ({f})" for f in custom)
            return errors.failure(
                f"Jira refused {what}: the project requires {shown}, which opsloop does not "
                "fill. Make it optional or give it a default value for opsloop's issue type, "
                "or file this task in Jira itself."
            )
        return errors.refused(status, body, what)

    async def field_names(self) -> dict[str, str]:
        """Field ids to their names (`GET /field`), asked once."""
        if self._field_names is None:
            try:
                listed = await self.call("GET", "/field", "reading Jira's field names")
            except IntegrationError:
                return {}  # the refusal is still shown, with the field's id
            self._field_names = {
                str(f.get("id")): str(f.get("name")) for f in listed or [] if isinstance(f, dict)
            }
        return self._field_names


async def _body(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    if not text:
        return None
    try:
        return await response.json(content_type=None)
    except ValueError:
        return {"errorMessages": [text[:200]]} if response.status >= 400 else None


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
