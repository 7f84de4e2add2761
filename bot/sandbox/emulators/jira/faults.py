"""Ways the Jira emulator misbehaves on purpose: failures, held answers and a rate limit."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from fnmatch import fnmatch


@dataclass
class Failure:
    status: int
    times: int
    path: str = "*"  # a glob over the request path
    method: str = "*"


@dataclass
class Hold:
    """Answer only after `seconds`; with `after_handling` the request takes effect first
    (a create that happened but whose answer never came)."""

    path: str
    seconds: float
    method: str = "*"
    after_handling: bool = False
    times: int = 1


@dataclass
class RateLimit:
    """At most `requests` per `per_seconds`; beyond that 429 with Retry-After (seconds)."""

    requests: int
    per_seconds: float
    seen: deque[float] = field(default_factory=deque)

    def retry_after(self) -> int | None:
        moment = time.monotonic()
        while self.seen and moment - self.seen[0] >= self.per_seconds:
            self.seen.popleft()
        if len(self.seen) >= self.requests:
            return max(1, round(self.per_seconds - (moment - self.seen[0]) + 0.5))
        self.seen.append(moment)
        return None


def matches(pattern: str, method_pattern: str, path: str, method: str) -> bool:
    return fnmatch(path, pattern) and method_pattern in ("*", method)
