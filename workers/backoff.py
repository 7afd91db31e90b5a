"""Retry delays: exponential with full jitter, capped."""

from __future__ import annotations

import random


def retry_delay(attempt: int, base: float, ceiling: float, rng: random.Random | None = None) -> float:
    """Delay before try `attempt + 1`: uniform in [cap/2, cap], cap = min(ceiling, base * 2**(attempt-1)).

    Half-jitter keeps a floor, so a storm of failures still spreads out but no retry comes back instantly.
    """
    cap = min(ceiling, base * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(cap / 2, cap)
