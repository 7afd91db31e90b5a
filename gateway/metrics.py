"""Prometheus metrics of the gateway. Job outcomes are counted by the workers in Redis and exported here,
so one scrape of any gateway shows the whole system."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


class _JobOutcomes(Collector):
    def __init__(self) -> None:
        self.snapshot: dict[str, float] = {}

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("crmagento_jobs", "Event handling outcomes across all workers", labels=["outcome"])
        for outcome, value in sorted(self.snapshot.items()):
            family.add_metric([outcome], value)
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.webhooks = Counter(
            "crmagento_webhooks",
            "Webhook deliveries by source, event type and outcome",
            ["source", "type", "outcome"],
            registry=self.registry,
        )
        self.ingest_seconds = Histogram(
            "crmagento_ingest_seconds",
            "Time from request to answer for webhooks",
            ["source"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.queue_depth = Gauge("crmagento_queue_depth", "Jobs waiting in the queue", registry=self.registry)
        self.dead_letters = Gauge("crmagento_dead_letters", "Dead letters waiting", registry=self.registry)
        self.workers_alive = Gauge("crmagento_workers_alive", "Workers with a fresh heartbeat", registry=self.registry)
        self.job_outcomes = _JobOutcomes()
        self.registry.register(self.job_outcomes)
        # labels() takes a lock and builds a tuple on every call; the webhook path asks for the same few
        # children thousands of times a second. Label values are bounded (sources, catalogue types, outcomes).
        self._webhook_children: dict[tuple[str, str, str], Counter] = {}
        self._ingest_children: dict[str, Histogram] = {}

    def webhook(self, source: str, event_type: str, outcome: str) -> Counter:
        key = (source, event_type, outcome)
        child = self._webhook_children.get(key)
        if child is None:
            child = self._webhook_children[key] = self.webhooks.labels(*key)
        return child

    def ingest(self, source: str) -> Histogram:
        child = self._ingest_children.get(source)
        if child is None:
            child = self._ingest_children[source] = self.ingest_seconds.labels(source)
        return child
