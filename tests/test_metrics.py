"""The gateway's webhook metrics are plain counters turned into Prometheus families at scrape time: check they
read the way prometheus-client's own Counter and Histogram would."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import Metrics


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_webhook_counts_and_answer_times() -> None:
    metrics = Metrics()
    for seconds in (0.0004, 0.001, 0.0011, 0.02, 9.0):  # 0.001 and 0.02 sit exactly on bounds: le is inclusive
        metrics.webhook("cloudretailer", "product.updated", "queued", seconds)
    metrics.webhook("cloudretailer", "product.updated", "duplicate", 0.002)
    metrics.webhook("magento", "unknown", "unauthorized", 0.0001)
    s = _samples(metrics)

    def count(source: str, event_type: str, outcome: str) -> float:
        return s[("crmagento_webhooks_total", (("outcome", outcome), ("source", source), ("type", event_type)))]

    assert count("cloudretailer", "product.updated", "queued") == 5
    assert count("cloudretailer", "product.updated", "duplicate") == 1
    assert count("magento", "unknown", "unauthorized") == 1

    def bucket(source: str, le: str) -> float:
        return s[("crmagento_ingest_seconds_bucket", (("le", le), ("source", source)))]

    assert bucket("cloudretailer", "0.001") == 2
    assert bucket("cloudretailer", "0.0025") == 4
    assert bucket("cloudretailer", "0.02") == 5
    assert bucket("cloudretailer", "5.0") == 5
    assert bucket("cloudretailer", "+Inf") == 6
    assert s[("crmagento_ingest_seconds_count", (("source", "cloudretailer"),))] == 6
    assert abs(s[("crmagento_ingest_seconds_sum", (("source", "cloudretailer"),))] - 9.0245) < 1e-9
    assert bucket("magento", "0.001") == 1


def test_nothing_recorded_yet_still_scrapes() -> None:
    s = _samples(Metrics())
    assert ("crmagento_queue_depth", ()) in s
    assert not any(name.startswith("crmagento_webhooks") for name, _ in s)
