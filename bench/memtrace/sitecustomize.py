"""Bench-only diagnostic (bench/soak.py --tracemalloc): loaded through PYTHONPATH into the gateway and worker
processes, it makes SIGUSR1 write a tracemalloc snapshot to $CRM_BENCH_TRACEMALLOC_DIR/<pid>-<n>.snap, so the
soak can diff what was allocated and kept between two moments. Never used outside that option."""

from __future__ import annotations

import itertools
import os
import signal
import tracemalloc

_DIR = os.environ.get("CRM_BENCH_TRACEMALLOC_DIR")

if _DIR:
    tracemalloc.start(int(os.environ.get("CRM_BENCH_TRACEMALLOC_FRAMES", "8")))
    _count = itertools.count(1)

    def _dump(signum: int, frame: object) -> None:
        path = os.path.join(_DIR, f"{os.getpid()}-{next(_count)}.snap")
        tracemalloc.take_snapshot().dump(path)

    signal.signal(signal.SIGUSR1, _dump)
