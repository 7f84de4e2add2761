"""Switches that make the emulated API server fail or answer slowly, as a real one sometimes
does (an overloaded server's 429 with Retry-After, a 500, a 503 while it restarts)."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from aiohttp import web

from .errors import status_object

_ANSWERS = {
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: the emulator was told to fail"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted"),
}


@dataclass
class Failure:
    """Answer `status` to matching requests, `times` more times (None: until `heal()`)."""

    status: int
    times: int | None = None
    path: str | None = None  # a glob or whole path (`*/rollouts/shop/status`)
    method: str | None = None
    retry_after: int = 1

    def matches(self, method: str, path: str) -> bool:
        return request_matches(self.method, self.path, method, path)

    def response(self) -> web.Response:
        reason, message = _ANSWERS.get(self.status, ("InternalError", f"emulated {self.status}"))
        details = {"retryAfterSeconds": self.retry_after} if self.status in (429, 503) else None
        headers = {"Retry-After": str(self.retry_after)} if self.status in (429, 503) else None
        body = status_object(self.status, reason, message, details)
        return web.json_response(body, status=self.status, headers=headers)


@dataclass
class Hold:
    """Hold matching requests for `seconds`, re-read while waiting (set it to 0, or call
    `emu.release_holds()`, to let them go); the work is done after the hold."""

    seconds: float
    path: str | None = None
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return request_matches(self.method, self.path, method, path)


def request_matches(want_method: str | None, want_path: str | None, method: str, path: str) -> bool:
    if want_method is not None and want_method.upper() != method.upper():
        return False
    return want_path is None or fnmatchcase(path, want_path)


class Switches:
    """The failures, delays and holds in force; consulted for every request."""

    def __init__(self) -> None:
        self.failures: list[Failure] = []
        self.holds: list[Hold] = []
        self.delay = 0.0

    def failure_for(self, method: str, path: str) -> Failure | None:
        """The first live failure matching this request, counting one use of it."""
        for failure in self.failures:
            if failure.matches(method, path):
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self.failures.remove(failure)
                return failure
        return None

    def wait_for(self, method: str, path: str) -> float:
        held = max((h.seconds for h in self.holds if h.matches(method, path)), default=0.0)
        return max(self.delay, held)
