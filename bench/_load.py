"""The load generator: signed `/ops help` slash commands sent with C requests in flight.

Bodies are signed before the clock starts, so HMAC work on the client side is not in the numbers.
Each request is timed on its own (perf_counter around the POST and the read of the answer); the
wall time of the whole batch gives the throughput.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import aiohttp

REQUEST_TIMEOUT = 10.0  # far above Slack's 3 s: a slow answer is measured, not cut off


@dataclass(frozen=True)
class SignedRequest:
    body: bytes
    headers: dict[str, str]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Where:
    """The workspace, person and channel a command comes from (as Slack's side knows them)."""

    team_id: str
    user_id: str
    channel_id: str


def slash_body(where: Where, trigger_id: str, response_url: str) -> bytes:
    """A slash command form as Slack sends it (the fields and order of Slack's docs)."""
    form = {
        "token": "bench-verification-token",
        "team_id": where.team_id,
        "team_domain": "bench",
        "channel_id": where.channel_id,
        "channel_name": "bench",
        "user_id": where.user_id,
        "user_name": "bench",
        "command": "/ops",
        "text": "help",
        "api_app_id": "A0BENCH",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    return urlencode(form).encode()


def build_requests(secret: str, where: Where, response_urls: list[str]) -> list[SignedRequest]:
    """One signed delivery per response_url, stamped now (Slack's window is 5 minutes).

    Every trigger_id is new: opsloop uses it as the job id, and a repeated one would be a
    duplicate delivery that it acks without storing, which is not the path being measured.
    """
    run = uuid.uuid4().hex[:8]
    timestamp = str(int(time.time()))
    out = []
    for i, response_url in enumerate(response_urls):
        body = slash_body(where, f"{run}.{i}.bench", response_url)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(secret, timestamp, body),
        }
        out.append(SignedRequest(body, headers))
    return out


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile: a value that was actually measured."""
    if not sorted_values:
        return math.nan
    rank = max(math.ceil(p / 100 * len(sorted_values)), 1)
    return sorted_values[rank - 1]


@dataclass
class LoadResult:
    target: str
    concurrency: int
    latencies_ms: list[float]
    wall_s: float
    # What went wrong, by kind ("status 401", "body", "ClientConnectorError"...); empty when
    # every answer was the empty 200 that acks a slash command.
    errors: Counter[str] = field(default_factory=Counter)
    # CPU seconds each watched process spent during the measured phase (see run_load's probe).
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def p(self, q: float) -> float:
        return percentile(sorted(self.latencies_ms), q)

    @property
    def throughput(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else math.nan

    def cpu_us_per_request(self, process: str) -> float:
        if process not in self.cpu_s or not self.requests:
            return math.nan
        return self.cpu_s[process] / self.requests * 1e6


async def _send_all(
    session: aiohttp.ClientSession,
    url: str,
    requests: list[SignedRequest],
    concurrency: int,
    latencies: list[float],
    errors: Counter[str],
) -> None:
    pending = iter(requests)

    async def sender() -> None:
        # Each sender takes the next request when its previous one is answered: exactly
        # `concurrency` requests in flight until the list runs out (a bounded loop).
        for req in pending:
            started = time.perf_counter()
            try:
                async with session.post(url, data=req.body, headers=req.headers) as resp:
                    body = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as e:
                latencies.append((time.perf_counter() - started) * 1000)
                errors[type(e).__name__] += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            if status != 200:
                errors[f"status {status}"] += 1
            elif body:
                # An ack with text is how opsloop reports that it could not store the job.
                errors["non-empty ack"] += 1

    await asyncio.gather(*(sender() for _ in range(concurrency)))


async def run_load(
    target: str,
    url: str,
    warmup: list[SignedRequest],
    requests: list[SignedRequest],
    concurrency: int,
    cpu_probe: Callable[[], dict[str, float]] | None = None,
) -> tuple[LoadResult, LoadResult]:
    """Warm up, then send `requests` with at most `concurrency` in flight, timing each and all.

    Both phases share one session, so the measured phase reuses the warm-up's keep-alive
    connections (Slack keeps its connections to an app open too) and does not time TCP set-up.
    `cpu_probe`, read just before and after the measured phase, gives CPU seconds used so far
    by each process of interest; the differences land in the result's `cpu_s`. CPU per request
    says where the cost is even when the machine is shared and wall times are noisy.
    Returns (warm-up, measured).
    """
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        warm = LoadResult(target, concurrency, [], 0.0)
        started = time.perf_counter()
        await _send_all(session, url, warmup, concurrency, warm.latencies_ms, warm.errors)
        warm.wall_s = time.perf_counter() - started
        measured = LoadResult(target, concurrency, [], 0.0)
        # The load generator's own garbage collections would show up as server latency;
        # collect now and hold them off for the batch (its allocations are bounded by the
        # request count).
        gc.collect()
        gc.disable()
        try:
            cpu_before = cpu_probe() if cpu_probe else {}
            started = time.perf_counter()
            await _send_all(
                session, url, requests, concurrency, measured.latencies_ms, measured.errors
            )
            measured.wall_s = time.perf_counter() - started
            cpu_after = cpu_probe() if cpu_probe else {}
        finally:
            gc.enable()
        measured.cpu_s = {k: cpu_after[k] - v for k, v in cpu_before.items() if k in cpu_after}
    return warm, measured
