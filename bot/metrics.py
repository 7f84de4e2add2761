"""Prometheus metrics, in a registry per app so that tests can build many apps in one process."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ACK_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 3.0)


class Metrics:
    """Every metric the bot exports at /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
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
        self.jobs_queued = Gauge("opsloop_jobs_queued", "Jobs waiting in the queue", registry=r)
        self.jobs_running = Gauge(
            "opsloop_jobs_running", "Jobs running in this process", registry=r
        )
        self.jobs_failed = Counter(
            "opsloop_jobs_failed", "Jobs that ended in an error", ["job"], registry=r
        )
        self.jobs_enqueued = Counter(
            "opsloop_jobs_enqueued", "Jobs put on the queue by this process", ["job"], registry=r
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

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
