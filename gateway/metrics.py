"""Prometheus metrics of the gateway. Job outcomes are counted by the workers in Redis and exported here,
so one scrape of any gateway shows the whole system."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class _JobOutcomes(Collector):
    def __init__(self) -> None:
        self.snapshot: dict[str, float] = {}

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("crmagento_jobs", "Event handling outcomes across all workers", labels=["outcome"])
        for outcome, value in sorted(self.snapshot.items()):
            family.add_metric([outcome], value)
        yield family


class _Webhooks(Collector):
    """Webhook counts and answer times, kept as plain numbers on the webhook path and turned into Prometheus
    families only when scraped. prometheus-client's Counter and Histogram take a lock per update (two for an
    observation) and look the child up by labels; on a path that runs ten thousand times a second from a
    single event-loop thread neither is needed."""

    BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}
        # source -> observations per bucket (the last one is +Inf, not cumulative) and their sum
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}

    def record(self, source: str, event_type: str, outcome: str, seconds: float) -> None:
        key = (source, event_type, outcome)
        self.counts[key] = self.counts.get(key, 0) + 1
        buckets = self.buckets.get(source)
        if buckets is None:
            buckets = self.buckets[source] = [0] * (len(self.BUCKETS) + 1)
            self.sums[source] = 0.0
        buckets[bisect_left(self.BUCKETS, seconds)] += 1
        self.sums[source] += seconds

    def collect(self) -> Iterator[Metric]:
        counts = CounterMetricFamily(
            "crmagento_webhooks",
            "Webhook deliveries by source, event type and outcome",
            labels=["source", "type", "outcome"],
        )
        for key, n in sorted(self.counts.items()):
            counts.add_metric(list(key), n)
        yield counts
        latency = HistogramMetricFamily(
            "crmagento_ingest_seconds", "Time from request to answer for webhooks", labels=["source"]
        )
        bounds = [floatToGoString(b) for b in self.BUCKETS] + ["+Inf"]
        for source, buckets in sorted(self.buckets.items()):
            cumulative = list(accumulate(buckets))
            latency.add_metric([source], list(zip(bounds, cumulative, strict=True)), sum_value=self.sums[source])
        yield latency


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.webhooks = _Webhooks()
        self.registry.register(self.webhooks)
        self.queue_depth = Gauge("crmagento_queue_depth", "Jobs waiting in the queue", registry=self.registry)
        self.dead_letters = Gauge("crmagento_dead_letters", "Dead letters waiting", registry=self.registry)
        self.workers_alive = Gauge("crmagento_workers_alive", "Workers with a fresh heartbeat", registry=self.registry)
        self.remote_up = Gauge(
            "crmagento_remote_up",
            "1 while the remote system is up, 0 while it is unavailable or misconfigured",
            labelnames=["remote"],
            registry=self.registry,
        )
        self.parked_events = Gauge(
            "crmagento_parked_events",
            "Events waiting in entities parked until the remote system is back",
            labelnames=["remote"],
            registry=self.registry,
        )
        self.job_outcomes = _JobOutcomes()
        self.registry.register(self.job_outcomes)

    def webhook(self, source: str, event_type: str, outcome: str, seconds: float) -> None:
        """One answered delivery. Call from the event loop's thread only."""
        self.webhooks.record(source, event_type, outcome, seconds)
