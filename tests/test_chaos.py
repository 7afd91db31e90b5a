"""Fault tests at the small size, inside the normal test run: each scenario of tests/chaos runs against real
processes (private Redis, `crmagento serve`, two `crmagento worker`, both sandboxes) while a steady stream of
product, stock and order changes flows, and must end with Magento equal to Cloud Retailer for every SKU, one
sale per completed order, every acknowledged webhook in the event log in a terminal state, nothing stuck and no
dead letter, plus the scenario's own checks (a dead worker taken over within 30 s; an outage that outlasts the
retry budget seen, its work parked rather than dead-lettered, and drained within 60 s of the remote coming
back). `make chaos` runs the same scenarios at full size and prints the counts and figures; here they are shown
when a scenario fails.

Never touches the machine's shared Redis: every scenario starts its own on a free port.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.scenarios import SCENARIOS, SMALL, run_scenario

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_the_sync_converges_through_the_fault(name: str, tmp_path: Path) -> None:
    outcome = await run_scenario(name, SMALL, tmp_path / name)
    failed = [f"{c.name}: {c.detail}" for c in outcome.verdict.checks if not c.ok]
    assert not failed, f"{name}: {failed}\ncounts: {outcome.verdict.counts}\nfault: {outcome.fault}\nlogs: {tmp_path}"
