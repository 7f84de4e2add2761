"""Slack's limits: the per-channel posting limit, 429 windows a test opens, and early calls.

Slack asks a client that got a 429 not to call that method again before `Retry-After` has passed,
and may disable apps that keep calling. The ledger remembers every deadline the emulator announced
(per method, and per channel for chat.postMessage) and records each call that arrives before one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

# A call that arrives this soon after the 429 that set a deadline was on its way before any
# client could have heard that 429 (another replica's call, sent at the same moment); it is
# listed in `in_flight_calls`, not counted as early.
IN_FLIGHT_SECONDS = 0.25


@dataclass
class _Bucket:
    tokens: float
    updated: float


class ChannelRateLimiter:
    """A token bucket per channel: `burst` posts at once, refilled at `rate` per second."""

    def __init__(self, rate: float | None, burst: int, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, channel: str) -> int | None:
        """Spend one post; None when allowed, else the Retry-After seconds Slack would send."""
        if self.rate is None or self.rate <= 0:
            return None
        now = self._clock()
        bucket = self._buckets.get(channel)
        if bucket is None:
            bucket = self._buckets[channel] = _Bucket(tokens=float(self.burst), updated=now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))

    def reset(self) -> None:
        """Forget every channel's history, as if no post had been made."""
        self._buckets.clear()


# What a limit applies to: (method, None) for the whole method, (method, channel) for one channel.
Scope = tuple[str, str | None]


@dataclass(frozen=True)
class EarlyCall:
    """A call that arrived before a Retry-After deadline the emulator had announced for it."""

    method: str
    channel: str | None  # set when the deadline was the channel's (chat.postMessage)
    at: float  # emulator clock
    deadline: float
    since_429: float  # seconds since the first 429 that announced this deadline

    @property
    def early_by(self) -> float:
        return self.deadline - self.at

    def to_json(self) -> dict[str, object]:
        return {
            "method": self.method,
            "channel": self.channel,
            "early_by": round(self.early_by, 3),
            "since_429": round(self.since_429, 3),
        }


@dataclass
class _Window:
    until: float
    retry_after: int | None


@dataclass
class _Deadline:
    at: float
    announced: float  # when the 429 that opened this (still running) deadline was answered


class RetryAfterLedger:
    """429 windows opened by tests, the deadlines announced, and the calls that came early."""

    def __init__(self, clock: Callable[[], float], in_flight: float = IN_FLIGHT_SECONDS) -> None:
        self._clock = clock
        self.in_flight = in_flight
        self._windows: dict[Scope, _Window] = {}
        self._deadlines: dict[Scope, _Deadline] = {}
        self.early_calls: list[EarlyCall] = []
        self.in_flight_calls: list[EarlyCall] = []

    def open_window(
        self,
        method: str,
        seconds: float,
        *,
        channel: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """For `seconds`, every call to `method` (in `channel`) answers 429. Its Retry-After is
        the seconds left, rounded up as Slack does, or `retry_after` when given (Slack may say
        wait 1 s and then refuse again)."""
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        if retry_after is not None and retry_after < 1:
            raise ValueError("retry_after must be at least 1")
        self._windows[(method, channel)] = _Window(self._clock() + seconds, retry_after)

    def arrive(self, method: str, channel: str | None) -> tuple[Scope, int] | None:
        """Note a call as it arrives: record it if early. When a window holds, its scope and
        the Retry-After to answer (`announce` it once the 429 is given)."""
        now = self._clock()
        scopes: list[Scope] = [(method, None)] + ([(method, channel)] if channel else [])
        self._note_early(method, scopes, now)
        for scope in scopes:
            window = self._windows.get(scope)
            if window is not None and now < window.until:
                return scope, window.retry_after or max(1, math.ceil(window.until - now))
        return None

    def announce(self, scope: Scope, retry_after: int) -> None:
        """A 429 with this Retry-After was answered for `scope`."""
        now = self._clock()
        current = self._deadlines.get(scope)
        if current is None or current.at <= now:
            self._deadlines[scope] = _Deadline(now + retry_after, now)
        elif now + retry_after > current.at:
            current.at = now + retry_after

    def _note_early(self, method: str, scopes: list[Scope], now: float) -> None:
        running = [(s, d) for s in scopes if (d := self._deadlines.get(s)) and now < d.at]
        if not running:
            return
        scope, deadline = max(running, key=lambda item: item[1].at)
        call = EarlyCall(method, scope[1], now, deadline.at, now - deadline.announced)
        if call.since_429 < self.in_flight:
            self.in_flight_calls.append(call)
        else:
            self.early_calls.append(call)

    def reset(self) -> None:
        """Close every window and forget every deadline and early call."""
        self._windows.clear()
        self._deadlines.clear()
        self.early_calls.clear()
        self.in_flight_calls.clear()
