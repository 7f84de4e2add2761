"""Prometheus Alertmanager: the port the bot uses (silences, alert queries) and its HTTP adapter.

The adapter speaks Alertmanager's API v2 over aiohttp, returns the bot's own frozen types and
turns every failure into one `IntegrationError("Alertmanager", ...)` whose message can be shown
to a Slack user as it is.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import aiohttp
from yarl import URL

from bot.errors import IntegrationError, OutcomeUnknown

SYSTEM = "Alertmanager"

# Worst case of one call, whatever `timeout` and `retries` say: the contract gives a person an
# answer within 30 s, and the caller needs a few seconds of that to reply.
CALL_BUDGET = 25.0
_BACKOFF = 0.2  # seconds before the first retry; doubled for each further one
_MAX_REASON = 300  # characters of Alertmanager's own explanation passed on to a person

T = TypeVar("T")


@dataclass(frozen=True)
class Matcher:
    """One Alertmanager v2 label matcher: `n="v"`, `n!="v"`, `n=~"re"` or `n!~"re"`."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    def expression(self) -> str:
        """This matcher in Alertmanager's filter syntax, with the value quoted and escaped."""
        op = (
            ("=~" if self.is_equal else "!~") if self.is_regex else ("=" if self.is_equal else "!=")
        )
        value = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{op}"{value}"'


@dataclass(frozen=True)
class ActiveAlert:
    """One alert as `GET /api/v2/alerts` reports it."""

    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    state: str  # "active" | "suppressed" | "unprocessed"
    silenced_by: tuple[str, ...]
    inhibited_by: tuple[str, ...]
    generator_url: str | None


@dataclass(frozen=True)
class Silence:
    """One silence as Alertmanager keeps it."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    state: str  # "active" | "pending" | "expired"


class AlertmanagerPort(Protocol):
    """What the bot needs from Alertmanager."""

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

        `key` identifies the request: the silence carries it, so that a retry or a re-run of
        the same request finds the silence instead of making a second one."""
        ...

    async def find_silence(self, matchers: Sequence[Matcher], key: str) -> Silence | None:
        """The live (active or pending) silence made for request `key`, if any."""
        ...

    async def expire_silence(self, silence_id: str) -> None:
        """End a silence now; an expired or unknown silence is not an error."""
        ...

    async def get_silence(self, silence_id: str) -> Silence | None:
        """The silence with this id, or None when Alertmanager does not know it."""
        ...

    async def alerts(
        self,
        matchers: Sequence[Matcher] = (),
        *,
        active: bool = True,
        silenced: bool = True,
        inhibited: bool = True,
    ) -> list[ActiveAlert]:
        """Alerts Alertmanager holds that match every matcher, filtered by state."""
        ...

    async def status(self) -> str:
        """Alertmanager's version, proving that it answers."""
        ...

    async def close(self) -> None:
        """Release the connections."""
        ...


class _Unreadable(ValueError):
    """Alertmanager's answer did not have the shape its API describes."""


@dataclass(frozen=True)
class _Reply:
    status: int
    text: str

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError as e:
            raise _Unreadable("not JSON") from e

    def reason(self) -> str:
        """Alertmanager's own explanation: a JSON string (400), `{"message"}` (422) or text."""
        try:
            data = json.loads(self.text)
        except ValueError:
            data = self.text
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            data = data["message"]
        if not isinstance(data, str) or data.lstrip().startswith("<"):
            return ""  # an HTML error page from a proxy says nothing a person can use
        data = " ".join(data.split())
        return data if len(data) <= _MAX_REASON else data[: _MAX_REASON - 1] + "…"


class _Failed(Exception):
    """One attempt failed in a way worth retrying."""

    def __init__(
        self, error: IntegrationError, cause: BaseException | None, maybe_sent: bool
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.cause = cause
        # False when the request certainly never reached Alertmanager (connect failed), so
        # repeating a POST cannot make a second silence.
        self.maybe_sent = maybe_sent


def _never(_: _Reply) -> bool:
    return False


class AlertmanagerClient:
    """`AlertmanagerPort` over Alertmanager's HTTP API v2."""

    def __init__(self, base_url: str, *, timeout: float = 5.0, retries: int = 2) -> None:
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
        self._raise_for_4xx(reply, "status")
        return self._read(reply, lambda d: _text(_field(_field(d, "versionInfo"), "version")))

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
            ("active", _flag(active)),
            ("silenced", _flag(silenced)),
            ("inhibited", _flag(inhibited)),
        ]
        params += _filters(matchers)
        reply = await self._request("GET", "alerts", params=params)
        self._raise_for_4xx(reply, "alert query")
        return self._read(reply, lambda d: [_alert(a) for a in _list(d)])

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
            "matchers": [
                {"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal}
                for m in matchers
            ],
            "startsAt": _rfc3339(now),
            "endsAt": _rfc3339(now + duration),
            "createdBy": created_by,
            "comment": f"{comment} {silence_marker(key)}" if comment else silence_marker(key),
        }

        async def made_already(limit: float) -> _Reply | None:
            try:
                made = await self._find_silence(matchers, key, limit)
            except (_Failed, _Unreadable):
                return None  # the caller's retry of the POST will say what is wrong
            return None if made is None else _Reply(200, json.dumps({"silenceID": made.id}))

        reply = await self._request("POST", "silences", body=body, recover=made_already)
        self._raise_for_4xx(reply, "silence")
        return self._read(reply, lambda d: _text(_field(d, "silenceID")))

    async def get_silence(self, silence_id: str) -> Silence | None:
        """The silence with this id (`GET /api/v2/silence/{id}`), or None when unknown."""
        reply = await self._request("GET", "silence/" + quote(silence_id, safe=""))
        # 422: not a UUID, so no silence can have it.
        if reply.status in (404, 422):
            return None
        self._raise_for_4xx(reply, "silence lookup")
        return self._read(reply, _silence)

    async def expire_silence(self, silence_id: str) -> None:
        """Expire a silence now (`DELETE /api/v2/silence/{id}`); unknown or expired is fine."""
        reply = await self._request(
            "DELETE", "silence/" + quote(silence_id, safe=""), settled=_silence_not_found
        )
        if reply.status in (404, 422) or _silence_not_found(reply):
            return
        self._raise_for_4xx(reply, "expiry")

    async def find_silence(self, matchers: Sequence[Matcher], key: str) -> Silence | None:
        """The live silence made for request `key` (`GET /api/v2/silences`), if any."""
        reply = await self._request("GET", "silences", params=_filters(matchers))
        self._raise_for_4xx(reply, "silence query")
        return self._read(reply, lambda d: _marked(d, key))

    async def _find_silence(
        self, matchers: Sequence[Matcher], key: str, limit: float
    ) -> Silence | None:
        """One attempt at `find_silence`, for the recovery of an unanswered POST."""
        reply = await self._attempt("GET", "silences", _filters(matchers), None, limit)
        if reply.status != 200:
            return None
        return _marked(reply.json(), key)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        body: Mapping[str, object] | None = None,
        settled: Callable[[_Reply], bool] = _never,
        recover: Callable[[float], Awaitable[_Reply | None]] | None = None,
    ) -> _Reply:
        """Send with retries on connection errors, timeouts and 5xx; any other reply returns.

        `settled` marks a 5xx reply as final; `recover(limit)`, called before repeating a
        request that may have reached Alertmanager, can supply the answer it would have had.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CALL_BUDGET
        failure: _Failed | None = None
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
            except _Failed as e:
                failure = e
                maybe_made = maybe_made or e.maybe_sent
                continue
            if reply.status < 500 or settled(reply):
                return reply
            message = f"Alertmanager answered {reply.status}"
            failure = _Failed(IntegrationError(SYSTEM, message, retryable=True), None, True)
            maybe_made = True
        assert failure is not None
        if recover is not None and maybe_made:
            # A request that may have reached Alertmanager and was not found: nobody can tell.
            raise OutcomeUnknown(SYSTEM, failure.error.message) from failure.cause
        raise failure.error from failure.cause

    async def _attempt(
        self,
        method: str,
        path: str,
        params: Sequence[tuple[str, str]] | None,
        body: Mapping[str, object] | None,
        limit: float,
    ) -> _Reply:
        """One HTTP exchange; a transport failure becomes `_Failed`."""
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
                return _Reply(response.status, await response.text(errors="replace"))
        except aiohttp.ClientSSLError as e:
            message = f"no trusted TLS connection to Alertmanager at {self._where}"
            raise IntegrationError(SYSTEM, message) from e
        except aiohttp.ConnectionTimeoutError as e:
            raise self._failed(f"Alertmanager at {self._where} is unreachable", e, False) from e
        except TimeoutError as e:
            message = f"Alertmanager did not answer within {_seconds(self._timeout)}"
            raise self._failed(message, e, True) from e
        except aiohttp.ClientConnectorError as e:
            raise self._failed(f"Alertmanager at {self._where} is unreachable", e, False) from e
        except aiohttp.ClientError as e:
            message = f"the connection to Alertmanager at {self._where} failed"
            raise self._failed(message, e, True) from e

    @staticmethod
    def _failed(message: str, cause: BaseException, maybe_sent: bool) -> _Failed:
        return _Failed(IntegrationError(SYSTEM, message, retryable=True), cause, maybe_sent)

    @staticmethod
    def _raise_for_4xx(reply: _Reply, what: str) -> None:
        if reply.status in (400, 422):
            reason = reply.reason() or f"answer {reply.status}"
            raise IntegrationError(SYSTEM, f"Alertmanager refused the {what}: {reason}")
        if reply.status >= 300:
            raise IntegrationError(SYSTEM, f"Alertmanager answered {reply.status}")

    @staticmethod
    def _read(reply: _Reply, parse: Callable[[Any], T]) -> T:
        try:
            return parse(reply.json())
        except _Unreadable as e:
            message = "Alertmanager sent an answer the bot could not read"
            raise IntegrationError(SYSTEM, message) from e


def silence_marker(key: str) -> str:
    """What ends the comment of a silence made for request `key`: how a re-run finds it.

    Never the matchers, the author or the rest of the comment: two people's requests may
    share all of those, and each must keep its own silence."""
    return f"[opsloop:{key}]"


def _filters(matchers: Sequence[Matcher]) -> list[tuple[str, str]]:
    return [("filter", m.expression()) for m in matchers]


def _marked(data: object, key: str) -> Silence | None:
    """The live silence in a `GET /api/v2/silences` answer whose comment carries `key`."""
    marker = silence_marker(key)
    for found in (_silence(s) for s in _list(data)):
        if found.state in ("active", "pending") and found.comment.endswith(marker):
            return found
    return None


def _silence_not_found(reply: _Reply) -> bool:
    # Alertmanager 0.25 answers 500 "silence not found" to DELETE of an unknown id (later
    # versions answer 404); retrying cannot change that.
    return reply.status == 500 and "silence not found" in reply.text.lower()


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _rfc3339(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# Go's RFC3339Nano: up to nine fractional digits, which `fromisoformat` refuses beyond six.
_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", re.I)
_ZERO_YEAR = 1  # Go's zero time, 0001-01-01T00:00:00Z, means "not set"


def parse_time(value: object) -> datetime | None:
    """An Alertmanager timestamp as an aware UTC datetime; None for Go's zero time.

    Raises ValueError for anything else, so webhook parsers can use it as well.
    """
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _Unreadable(f"not a timestamp: {value!r}")
    whole, fraction, zone = match.groups()
    micros = (fraction or "")[:6].ljust(6, "0")
    moment = datetime.fromisoformat(f"{whole}.{micros}{'+00:00' if zone in 'Zz' else zone}")
    if moment.year == _ZERO_YEAR:
        return None
    return moment.astimezone(UTC)


def _required_time(value: object) -> datetime:
    moment = parse_time(value)
    if moment is None:
        raise _Unreadable("a required timestamp is unset")
    return moment


def _field(data: object, key: str) -> object:
    if not isinstance(data, dict) or key not in data:
        raise _Unreadable(f"missing {key}")
    return data[key]


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise _Unreadable(f"not a string: {value!r}")
    return value


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise _Unreadable("not a list")
    return value


def _labels(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _Unreadable("not a label set")
    return {str(k): v for k, v in value.items()}


def _ids(value: object) -> tuple[str, ...]:
    return tuple(_text(v) for v in _list(value if value is not None else []))


def _alert(data: object) -> ActiveAlert:
    status = _field(data, "status")
    generator = data.get("generatorURL") if isinstance(data, dict) else None
    return ActiveAlert(
        fingerprint=_text(_field(data, "fingerprint")),
        labels=_labels(_field(data, "labels")),
        annotations=_labels(data.get("annotations") if isinstance(data, dict) else None),
        starts_at=_required_time(_field(data, "startsAt")),
        ends_at=parse_time(_field(data, "endsAt")),
        state=_text(_field(status, "state")),
        silenced_by=_ids(status.get("silencedBy") if isinstance(status, dict) else None),
        inhibited_by=_ids(status.get("inhibitedBy") if isinstance(status, dict) else None),
        generator_url=generator if isinstance(generator, str) and generator else None,
    )


def _matcher(data: object) -> Matcher:
    is_equal = data.get("isEqual", True) if isinstance(data, dict) else True
    return Matcher(
        name=_text(_field(data, "name")),
        value=_text(_field(data, "value")),
        is_regex=_field(data, "isRegex") is True,
        is_equal=is_equal is not False,
    )


def _silence(data: object) -> Silence:
    return Silence(
        id=_text(_field(data, "id")),
        matchers=tuple(_matcher(m) for m in _list(_field(data, "matchers"))),
        starts_at=_required_time(_field(data, "startsAt")),
        ends_at=_required_time(_field(data, "endsAt")),
        created_by=_text(_field(data, "createdBy")),
        comment=_text(_field(data, "comment")),
        state=_text(_field(_field(data, "status"), "state")),
    )


__all__ = [
    "CALL_BUDGET",
    "SYSTEM",
    "ActiveAlert",
    "AlertmanagerClient",
    "AlertmanagerPort",
    "Matcher",
    "Silence",
    "parse_time",
    "silence_marker",
]
