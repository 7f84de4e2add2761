"""Prometheus metrics, in a registry per app so that tests can build many apps in one process.

Two kinds: what this process counts as it works (requests, Slack calls, jobs it ran), and what
every process sees alike because it lives in Redis (the queue, the workers' heartbeats, open alert
groups, deploys in flight). The second kind is read at each scrape (bot/scrape.py) and shown
only when Redis answered that scrape: a stale number would hide the outage that
`opsloop_redis_up 0` reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

ACK_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 3.0)


@dataclass(frozen=True)
class SharedState:
    """What Redis said at this scrape; the same for every bot process sharing it."""

    jobs_queued: int
    jobs_waiting: int
    jobs_in_progress: int
    jobs_scheduled: int
    jobs_oldest_age_seconds: float
    workers_alive: int
    alert_groups_open: int
    deploys_in_flight: dict[str, int] = field(default_factory=dict)  # by rollout state


# name, help, and how to read the value from a SharedState
_SHARED: tuple[tuple[str, str, str], ...] = (
    ("opsloop_jobs_queued", "Jobs in the queue: waiting, running or scheduled", "jobs_queued"),
    ("opsloop_jobs_waiting", "Jobs due that no worker has started yet", "jobs_waiting"),
    ("opsloop_jobs_in_progress", "Jobs a worker (any process) is running", "jobs_in_progress"),
    ("opsloop_jobs_scheduled", "Jobs deferred to a later time", "jobs_scheduled"),
    (
        "opsloop_jobs_oldest_age_seconds",
        "How long the oldest waiting job has been due (0: none waiting)",
        "jobs_oldest_age_seconds",
    ),
    ("opsloop_workers_alive", "Job workers with a recent heartbeat", "workers_alive"),
    ("opsloop_alert_groups_open", "Alert groups still firing", "alert_groups_open"),
)
_DEPLOYS = ("opsloop_deploys_in_flight", "Rollouts not yet complete or rolled back, by state")


class _SharedCollector(Collector):
    """Yields the last SharedState, or nothing when Redis did not answer the scrape."""

    def __init__(self) -> None:
        self.state: SharedState | None = None

    def describe(self) -> Iterable[Metric]:
        yield from (GaugeMetricFamily(name, doc) for name, doc, _ in _SHARED)
        yield GaugeMetricFamily(*_DEPLOYS, labels=["state"])

    def collect(self) -> Iterator[Metric]:
        s = self.state
        if s is None:
            return
        for name, doc, attr in _SHARED:
            yield GaugeMetricFamily(name, doc, value=getattr(s, attr))
        deploys = GaugeMetricFamily(*_DEPLOYS, labels=["state"])
        for state, count in sorted(s.deploys_in_flight.items()):
            deploys.add_metric([state], count)
        yield deploys


class Metrics:
    """Every metric the bot exports at /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.redis_up = Gauge(
            "opsloop_redis_up", "1 when Redis answered this scrape within a second", registry=r
        )
        self._shared = _SharedCollector()
        r.register(self._shared)
        self.requests = Counter(
            "opsloop_http_requests",
            "HTTP requests by route and outcome",
            ["route", "status"],
            registry=r,
        )
        self.ack_latency = Histogram(
            "opsloop_slack_ack_seconds",
            "Time from receiving a Slack request to answering it",
            ["kind"],
            buckets=ACK_BUCKETS,
            registry=r,
        )
        self.jobs_running = Gauge(
            "opsloop_jobs_running", "Jobs running in this process", registry=r
        )
        # The job's name is the label `function` (arq's word): a label `job` would clash with
        # the `job` label Prometheus gives every target, and be renamed `exported_job`.
        self.jobs_failed = Counter(
            "opsloop_jobs_failed", "Jobs that ended in an error", ["function"], registry=r
        )
        self.jobs_enqueued = Counter(
            "opsloop_jobs_enqueued",
            "Jobs put on the queue by this process",
            ["function"],
            registry=r,
        )
        self.duplicates = Counter(
            "opsloop_duplicate_deliveries",
            "Deliveries recognised as retries and not acted on again",
            ["source"],
            registry=r,
        )
        self.slack_calls = Counter(
            "opsloop_slack_calls", "Slack Web API calls", ["method", "outcome"], registry=r
        )
        self.slack_rate_limited = Counter(
            "opsloop_slack_rate_limited", "Slack 429 answers honoured", ["method"], registry=r
        )
        self.slack_edits_dropped = Counter(
            "opsloop_slack_edits_dropped",
            "Message edits given up because Slack refused them for good (message_not_found...)",
            registry=r,
        )
        self.slack_budget_wait = Histogram(
            "opsloop_slack_budget_wait_seconds",
            "Time a message waited for its channel's budget",
            buckets=(0, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )

        # Label lookups cost microseconds on the ack path; bound children are kept here.
        self._bound: dict[tuple[str, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric._name, *labels)
        child = self._bound.get(key)
        if child is None:
            child = self._bound[key] = metric.labels(*labels)
        return child

    def ack(self, kind: str) -> Histogram:
        """The ack-latency histogram of one kind of Slack request."""
        child: Histogram = self._child(self.ack_latency, kind)
        return child

    def request(self, route: str, status: int) -> Counter:
        child: Counter = self._child(self.requests, route, str(status))
        return child

    def enqueued(self, job: str) -> Counter:
        child: Counter = self._child(self.jobs_enqueued, job)
        return child

    def duplicate(self, source: str) -> Counter:
        child: Counter = self._child(self.duplicates, source)
        return child

    def show_shared(self, state: SharedState | None) -> None:
        """What this scrape read from Redis; None: Redis did not answer."""
        self._shared.state = state
        self.redis_up.set(0 if state is None else 1)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
