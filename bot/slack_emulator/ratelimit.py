"""Slack's per-channel posting limit as a token bucket."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


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
