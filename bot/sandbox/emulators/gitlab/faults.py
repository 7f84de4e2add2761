"""Switches that make the emulated GitLab fail or answer slowly, as a real one sometimes does."""

from __future__ import annotations

import time
from dataclasses import dataclass
from fnmatch import fnmatchcase
from http import HTTPStatus

from aiohttp import web

from .models import JSON

# What GitLab (or the proxy in front of it) sends for each failure.
_PROXY_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>GitLab is not responding ({status})</title></head>"
    "<body><h1>{status}</h1><p>Whoops, GitLab is taking too much time to respond.</p></body>"
    "</html>\n"
)


@dataclass
class Failure:
    """One switch: answer `status` to matching requests, `times` more times (None: until healed)."""

    status: int
    times: int | None = None
    path: str | None = None
    method: str | None = None
    retry_after: int = 1
    body: JSON | str | None = None
    # True: GitLab does the work, then the answer is lost (a proxy time-out after the commit).
    after_handling: bool = False

    def matches(self, method: str, raw_path: str, path: str) -> bool:
        return request_matches(self.method, self.path, method, raw_path, path)

    def response(self) -> web.Response:
        if self.status == 429:
            return _rate_limited(self.retry_after, self.body)
        body = self.body if self.body is not None else _default_body(self.status)
        # A 503 (maintenance, overload) may say when to come back, as a 429 does.
        headers = {"Retry-After": str(self.retry_after)} if self.status == 503 else None
        if isinstance(body, str):
            kind = "text/html" if body.lstrip().startswith("<") else "text/plain"
            return web.Response(status=self.status, text=body, content_type=kind, headers=headers)
        return web.json_response(body, status=self.status, headers=headers)


@dataclass
class Hold:
    """Hold the answers to matching requests for `seconds`, re-read while waiting (set it to 0,
    or `emu.release_holds()`, to let them go). `after_handling=True`: GitLab does the work at
    once and only the answer waits, as when GitLab committed an issue and the client has not
    heard yet; a client that gives up meanwhile does not undo the work. Otherwise the request
    waits before GitLab starts on it, and is still handled after its client gave up."""

    seconds: float
    path: str | None = None
    method: str | None = None
    after_handling: bool = False

    def matches(self, method: str, raw_path: str, path: str) -> bool:
        return request_matches(self.method, self.path, method, raw_path, path)


def request_matches(
    want_method: str | None, want_path: str | None, method: str, raw_path: str, path: str
) -> bool:
    """A switch narrowed to a method and/or a path (None: any) against one request."""
    if want_method is not None and want_method.upper() != method.upper():
        return False
    return want_path is None or path_matches(want_path, raw_path, path)


def path_matches(pattern: str, raw_path: str, path: str) -> bool:
    """A glob (`*/issues*`) or a whole path, against the path as sent or URL-decoded."""
    return any(fnmatchcase(candidate, pattern) for candidate in (raw_path, path))


def _default_body(status: int) -> JSON | str:
    if status in (502, 503, 504):
        return _PROXY_PAGE.format(status=status)
    messages = {
        401: "401 Unauthorized",
        403: "403 Forbidden",
        404: "404 Not found",
        500: "500 Internal Server Error",
    }
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"message": messages.get(status, f"{status} {phrase}")}


def _rate_limited(retry_after: int, body: JSON | str | None) -> web.Response:
    # GitLab's rate limiter (Rack::Attack) answers in plain text with these headers.
    reset = int(time.time()) + retry_after
    headers = {
        "Retry-After": str(retry_after),
        "RateLimit-Limit": "600",
        "RateLimit-Observed": "601",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": str(reset),
        "RateLimit-ResetTime": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(reset)),
    }
    if isinstance(body, dict):
        return web.json_response(body, status=429, headers=headers)
    text = body if body is not None else "Retry later\n"
    return web.Response(status=429, text=text, content_type="text/plain", headers=headers)


class Switches:
    """The failures and delays in force; the emulator consults them for every request."""

    def __init__(self) -> None:
        self.failures: list[Failure] = []
        self.delay = 0.0
        # Seconds by path glob (as `Failure.path`); the first match wins over `delay`.
        self.delays: dict[str, float] = {}
        # Holds narrowed by method, before or after the work (see Hold); consulted after delays.
        self.holds: list[Hold] = []

    def fail(self, failure: Failure) -> None:
        self.failures.append(failure)

    def heal(self) -> None:
        self.failures.clear()

    def failure_for(self, method: str, raw_path: str, path: str) -> Failure | None:
        """The first live switch matching this request, counting one use of it."""
        for failure in self.failures:
            if failure.matches(method, raw_path, path):
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self.failures.remove(failure)
                return failure
        return None

    def delay_for(self, raw_path: str, path: str) -> float:
        for pattern, seconds in self.delays.items():
            if path_matches(pattern, raw_path, path):
                return seconds
        return self.delay

    def hold_for(self, method: str, raw_path: str, path: str, *, after_handling: bool) -> float:
        """Seconds the first matching hold of this kind keeps the request; 0 without one."""
        for hold in self.holds:
            if hold.after_handling == after_handling and hold.matches(method, raw_path, path):
                return hold.seconds
        return 0.0
