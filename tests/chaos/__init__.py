"""Fault tests: while a steady stream of product, stock and order changes flows through real processes, inject
one fault at a time and prove the sync still converges (the faults: tests/chaos/scenarios.py).

    python -m tests.chaos --size small|full [--scenario NAME ...]    (`make chaos` runs the full size)

Each scenario starts its own private Redis (append-only, `appendfsync always`, on a free port), the gateway
(`crmagento serve`) and workers (`crmagento worker`) as subprocesses with the shipped sync rules, and both
sandboxes in this process. Nothing is mocked. Besides the common verdict, a scenario checks figures of its
own: how fast a dead worker is taken over, how big the parked backlog of an outage grew and how soon it drained.
tests/test_chaos.py runs every scenario at the small size.
See docs/reliability.md for what each scenario proves and the last figures.
"""
