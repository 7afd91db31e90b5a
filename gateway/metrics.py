"""Prometheus metrics of the gateway. Job outcomes are counted by the workers in Redis and exported here,
so one scrape of any gateway shows the whole system."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from datetime import datetime
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from crmcore.jobrecords import AdminJobKind


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


class _SyncHealth(Collector):
    """Is Magento current, per domain, and what the last reconciliation found: from the status snapshot of the
    scrape (`update`). A figure not known (no change applied yet, no reconciliation report) has no sample, so an
    alert can tell "unknown" (absent) from "zero"."""

    def __init__(self) -> None:
        self.domains: dict[str, dict[str, Any]] = {}
        self.reconcile: dict[str, Any] = {}

    def update(self, snap: dict[str, Any]) -> None:
        self.domains = snap.get("domains") or {}
        self.reconcile = snap.get("reports", {}).get(AdminJobKind.RECONCILE_INVENTORY.value) or {}

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "crmagento_sync_lag_seconds",
            "Time from an event's arrival to its change applied, over the last 15 minutes",
            labels=["domain", "quantile"],
        )
        age = GaugeMetricFamily(
            "crmagento_last_applied_age_seconds", "Seconds since the newest change applied", labels=["domain"]
        )
        for domain, figures in sorted(self.domains.items()):
            for quantile, name in (("0.5", "lag_p50_ms"), ("0.99", "lag_p99_ms")):
                if figures.get(name) is not None:
                    lag.add_metric([domain, quantile], figures[name] / 1000)
            if figures.get("age_seconds") is not None:
                age.add_metric([domain], figures["age_seconds"])
        yield lag
        yield age
        drift = GaugeMetricFamily("crmagento_reconcile_drift", "drift_found of the last inventory reconciliation")
        if isinstance(self.reconcile.get("drift_found"), int):
            drift.add_metric([], self.reconcile["drift_found"])
        yield drift
        last_run = GaugeMetricFamily(
            "crmagento_reconcile_last_run_timestamp_seconds", "When the last inventory reconciliation report ended"
        )
        if finished := self.reconcile.get("finished"):
            last_run.add_metric([], datetime.fromisoformat(finished).timestamp())
        yield last_run


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
        self.sync_health = _SyncHealth()
        self.registry.register(self.sync_health)

    def webhook(self, source: str, event_type: str, outcome: str, seconds: float) -> None:
        """One answered delivery. Call from the event loop's thread only."""
        self.webhooks.record(source, event_type, outcome, seconds)
