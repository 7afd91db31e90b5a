"""The HTTP edge: verifies, validates, de-duplicates and queues; admin API, health and metrics."""

__version__ = "0.1.0"
