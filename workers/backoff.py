"""Waits that grow after each failure: exponential, capped, and, for retries many workers make at once, jittered.
The one formula of the workers: a job's retries (the dispatcher), a client's HTTP retries (clients/http.py), an
admin job's wait after an outage it met (adminjobs.py) and a worker's reconnects to Redis (worker.py)."""

from __future__ import annotations

import random


def backoff(attempt: int, base: float, ceiling: float) -> float:
    """`base` after the first failure, doubling after each one more, at most `ceiling`."""
    return min(ceiling, base * (2 ** max(0, attempt - 1)))


def retry_delay(attempt: int, base: float, ceiling: float, rng: random.Random | None = None) -> float:
    """Delay before try `attempt + 1`: uniform in [cap/2, cap], cap = backoff(attempt, base, ceiling).

    Half-jitter keeps a floor, so a storm of failures still spreads out but no retry comes back instantly.
    """
    cap = backoff(attempt, base, ceiling)
    return (rng or random).uniform(cap / 2, cap)
