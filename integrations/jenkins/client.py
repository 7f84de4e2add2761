"""Jenkins' JSON API over aiohttp, and the one place Jenkins' failures become the bot's errors.

Auth is HTTP basic with a user and that user's API token: Jenkins exempts API-token requests
from its CSRF protection, so no crumb is fetched (a password would need one; opsloop does not
take passwords). No SDK: python-jenkins is synchronous and covers none of `wfapi`; the few
calls below are plain JSON.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.errors import IntegrationError, OutcomeUnknown

SYSTEM = "Jenkins"
JSON = dict[str, Any]


def job_path(job: str) -> str:
    """`folder/legacy-build` -> `/job/folder/job/legacy-build` (each part quoted)."""
    return "".join(f"/job/{quote(part, safe='')}" for part in job.strip("/").split("/"))


class NotFound(IntegrationError):
    """Jenkins answered 404."""


class JenkinsHTTP:
    """Requests to one Jenkins, as `user` with an API token."""

    def __init__(self, url: str, user: str, token: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.user = user
        basic = base64.b64encode(f"{user}:{token}".encode()).decode()
        self._headers = {"Authorization": f"Basic {basic}"}  # never logged
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    async def get(self, path: str, what: str, query: Mapping[str, str] | None = None) -> JSON:
        _status, body, _ = await self._send("GET", path, what, query=query)
        try:
            found = json.loads(body)
        except ValueError:
            raise IntegrationError(
                SYSTEM, f"answered {what} with something other than JSON"
            ) from None
        if not isinstance(found, dict):
            raise IntegrationError(SYSTEM, f"answered {what} with something other than an object")
        return found

    async def post(
        self, path: str, what: str, form: Mapping[str, str] | None = None, *, makes: bool = False
    ) -> tuple[int, Mapping[str, str]]:
        """A POST; `makes`: it starts something, so an answer lost on the way is OutcomeUnknown
        (the caller looks for what it made before sending it again)."""
        status, _, headers = await self._send("POST", path, what, form=form, makes=makes)
        return status, headers

    async def _send(
        self,
        method: str,
        path: str,
        what: str,
        *,
        query: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        makes: bool = False,
    ) -> tuple[int, str, Mapping[str, str]]:
        try:
            async with self._client().request(
                method,
                self.url + path,
                params=dict(query or {}),
                data=dict(form) if form is not None else None,
                allow_redirects=False,
            ) as answer:
                body = await answer.text()
                status = answer.status
                headers = dict(answer.headers)
        except aiohttp.ClientConnectorError:
            raise IntegrationError(
                SYSTEM, f"cannot reach Jenkins at {self.url} ({what}); is it up?", retryable=True
            ) from None
        except (TimeoutError, aiohttp.ClientError):
            if makes:
                raise OutcomeUnknown(SYSTEM, f"no answer in time to {what}") from None
            raise IntegrationError(SYSTEM, f"no answer in time to {what}", retryable=True) from None
        if status < 400:
            return status, body, headers
        raise self._error(status, what)

    def _error(self, status: int, what: str) -> IntegrationError:
        if status == 401:
            return IntegrationError(
                SYSTEM,
                f"refused opsloop's credentials ({what}): check OPSLOOP_JENKINS_USER and "
                f"OPSLOOP_JENKINS_TOKEN (an API token made at {self.url}/me/configure).",
            )
        if status == 403:
            return IntegrationError(
                SYSTEM,
                f"user `{self.user}` may not {what}: give it Job/Read, Job/Build and Job/Cancel "
                "on that job.",
            )
        if status == 404:
            return NotFound(SYSTEM, f"found nothing to {what}.")
        if status == 400:
            return IntegrationError(SYSTEM, f"refused to {what} (400).")
        return IntegrationError(
            SYSTEM, f"answered {status} to {what}; try again in a minute.", retryable=True
        )
