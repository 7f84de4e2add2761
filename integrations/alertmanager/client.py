"""Prometheus Alertmanager as the bot's silencer: its HTTP API v2 over aiohttp.

Every call is retried on connection errors, time-outs and 5xx within CALL_BUDGET; a POST that
may have reached Alertmanager unanswered is looked for (by its marker) before it is sent again.
Answers are read into the bot's own frozen types (shapes.py), and every failure becomes one
`IntegrationError("Alertmanager", ...)` (errors.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import aiohttp
from yarl import URL

from bot.alerting.ports import ActiveAlert, Matcher, Silence
from bot.errors import OutcomeUnknown
from integrations.alertmanager.errors import (
    SYSTEM,
    Failed,
    Reply,
    failed,
    raise_for_4xx,
    read,
    transport_failure,
)
from integrations.alertmanager.shapes import (
    Unreadable,
    alert,
    as_list,
    field,
    filters,
    flag,
    marked,
    rfc3339,
    silence,
    silence_body,
    silence_marker,
    text,
)

# Worst case of one call, whatever `timeout` and `retries` say: the contract gives a person an
# answer within 30 s, and the caller needs a few seconds of that to reply.
CALL_BUDGET = 25.0
_BACKOFF = 0.2  # seconds before the first retry; doubled for each further one


def _never(_: Reply) -> bool:
    return False


def _silence_not_found(reply: Reply) -> bool:
    # Alertmanager 0.25 answers 500 "silence not found" to DELETE of an unknown id (later
    # versions answer 404); retrying cannot change that.
    return reply.status == 500 and "silence not found" in reply.text.lower()


class AlertmanagerClient:
    """The silencer (bot/alerting/ports.py) over Alertmanager's HTTP API v2."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        system: str = SYSTEM,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """`system` names who serves the API in every error (Grafana's built-in Alertmanager
        serves it too, under its own path and behind its token in `headers`)."""
        url = URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"not an http(s) URL: {url.with_user(None).with_password(None)}")
        if timeout <= 0 or retries < 0:
            raise ValueError("timeout must be positive and retries not negative")
        # Credentials in the URL (a reverse proxy's basic auth) go into an Authorization header
        # and nowhere else, so neither our messages nor aiohttp's exception texts carry them.
        self._headers = {"Accept": "application/json", "User-Agent": "opsloop"}
        if url.user is not None:
            pair = f"{url.user}:{url.password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        self._headers.update(headers or {})
        self._system = system
        bare = url.with_user(None).with_password(None).with_query(None).with_fragment(None)
        self._api = str(bare).rstrip("/") + "/api/v2/"
        host = f"[{url.host}]" if ":" in url.host else url.host
        self._where = f"{host}:{url.port}"
        self._timeout = timeout
        self._retries = retries
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AlertmanagerClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session; a later call opens a new one."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def status(self) -> str:
        """Alertmanager's version string from `GET /api/v2/status`."""
        reply = await self._request("GET", "status")
        raise_for_4xx(reply, "status", self._system)
        return read(reply, lambda d: text(field(field(d, "versionInfo"), "version")), self._system)

    async def alerts(
        self,
        matchers: Sequence[Matcher] = (),
        *,
        active: bool = True,
        silenced: bool = True,
        inhibited: bool = True,
    ) -> list[ActiveAlert]:
        """Alerts matching every matcher (`GET /api/v2/alerts`), filtered by state."""
        params: list[tuple[str, str]] = [
            ("active", flag(active)),
            ("silenced", flag(silenced)),
            ("inhibited", flag(inhibited)),
        ]
        params += filters(matchers)
        reply = await self._request("GET", "alerts", params=params)
        raise_for_4xx(reply, "alert query", self._system)
        return read(reply, lambda d: [alert(a) for a in as_list(d)], self._system)

    async def create_silence(
        self,
        matchers: Sequence[Matcher],
        duration: timedelta,
        created_by: str,
        comment: str,
        *,
        key: str,
    ) -> str:
        """Silence alerts matching `matchers` from now for `duration`; return the silence id.

        The comment ends with the request's marker (`silence_marker(key)`); a retry after an
        unanswered POST looks for that marker before it posts again."""
        now = datetime.now(UTC)
        body = {
            "matchers": silence_body(matchers),
            "startsAt": rfc3339(now),
            "endsAt": rfc3339(now + duration),
            "createdBy": created_by,
            "comment": f"{comment} {silence_marker(key)}" if comment else silence_marker(key),
        }

        async def made_already(limit: float) -> Reply | None:
            try:
                made = await self._find_silence(matchers, key, limit)
            except (Failed, Unreadable):
                return None  # the caller's retry of the POST will say what is wrong
            return None if made is None else Reply(200, json.dumps({"silenceID": made.id}))

        reply = await self._request("POST", "silences", body=body, recover=made_already)
        raise_for_4xx(reply, "silence", self._system)
        return read(reply, lambda d: text(field(d, "silenceID")), self._system)

    async def get_silence(self, silence_id: str) -> Silence | None:
        """The silence with this id (`GET /api/v2/silence/{id}`), or None when unknown."""
        reply = await self._request("GET", "silence/" + quote(silence_id, safe=""))
        # 422: not a UUID, so no silence can have it.
        if reply.status in (404, 422):
            return None
        raise_for_4xx(reply, "silence lookup", self._system)
        return read(reply, silence, self._system)

    async def expire_silence(self, silence_id: str) -> None:
        """Expire a silence now (`DELETE /api/v2/silence/{id}`); unknown or expired is fine."""
        reply = await self._request(
            "DELETE", "silence/" + quote(silence_id, safe=""), settled=_silence_not_found
        )
        if reply.status in (404, 422) or _silence_not_found(reply):
            return
        raise_for_4xx(reply, "expiry", self._system)

    async def find_silence(self, matchers: Sequence[Matcher], key: str) -> Silence | None:
        """The live silence made for request `key` (`GET /api/v2/silences`), if any."""
        reply = await self._request("GET", "silences", params=filters(matchers))
        raise_for_4xx(reply, "silence query", self._system)
        return read(reply, lambda d: marked(d, key), self._system)

    async def _find_silence(
        self, matchers: Sequence[Matcher], key: str, limit: float
    ) -> Silence | None:
        """One attempt at `find_silence`, for the recovery of an unanswered POST."""
        reply = await self._attempt("GET", "silences", filters(matchers), None, limit)
        if reply.status != 200:
            return None
        return marked(reply.json(), key)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        body: Mapping[str, object] | None = None,
        settled: Callable[[Reply], bool] = _never,
        recover: Callable[[float], Awaitable[Reply | None]] | None = None,
    ) -> Reply:
        """Send with retries on connection errors, timeouts and 5xx; any other reply returns.

        `settled` marks a 5xx reply as final; `recover(limit)`, called before repeating a
        request that may have reached Alertmanager, can supply the answer it would have had.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CALL_BUDGET
        failure: Failed | None = None
        maybe_made = False  # some attempt may have reached Alertmanager unanswered
        for attempt in range(self._retries + 1):
            if failure is not None:
                pause = _BACKOFF * 2 ** (attempt - 1)
                if deadline - loop.time() < pause + 0.1:
                    break
                await asyncio.sleep(pause)
                if recover is not None and failure.maybe_sent:
                    found = await recover(min(self._timeout, (deadline - loop.time()) / 2))
                    if found is not None:
                        return found
            limit = min(self._timeout, deadline - loop.time())
            if limit <= 0:
                break
            try:
                reply = await self._attempt(method, path, params, body, limit)
            except Failed as e:
                failure = e
                maybe_made = maybe_made or e.maybe_sent
                continue
            if reply.status < 500 or settled(reply):
                return reply
            failure = failed(f"{self._system} answered {reply.status}", None, True, self._system)
            maybe_made = True
        assert failure is not None
        if recover is not None and maybe_made:
            # A request that may have reached Alertmanager and was not found: nobody can tell.
            raise OutcomeUnknown(self._system, failure.error.message) from failure.cause
        raise failure.error from failure.cause

    async def _attempt(
        self,
        method: str,
        path: str,
        params: Sequence[tuple[str, str]] | None,
        body: Mapping[str, object] | None,
        limit: float,
    ) -> Reply:
        """One HTTP exchange; a transport failure becomes `Failed` (or a final IntegrationError)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                headers=self._headers,
            )
        try:
            async with self._session.request(
                method,
                URL(self._api + path, encoded=True),
                params=params,
                json=body,
                timeout=aiohttp.ClientTimeout(total=limit),
            ) as response:
                return Reply(response.status, await response.text(errors="replace"))
        except (aiohttp.ClientError, TimeoutError) as e:
            raise transport_failure(e, self._where, self._timeout, self._system) from e
