"""Smoke test of the end-to-end benches: tiny runs of bench/e2e_latency.py and bench/worker_throughput.py as
`make bench` runs them (subprocesses: embedded Redis, `crmagento serve`, `crmagento worker`, both sandboxes),
so a change to the gateway, the workers or the sandboxes that breaks the benches fails here, not on the day
someone needs the figures. Each asserts the JSON carries the figures and that no change was lost."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _suite() -> ModuleType:
    """bench/suite.py (bench/ is not a package): its summaries must read what the benches write."""
    spec = importlib.util.spec_from_file_location("bench_suite", ROOT / "bench" / "suite.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _bench(script: str, args: list[str]) -> str:
    """Run a bench script; its stdout."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _run(script: str, args: list[str], out: Path) -> dict[str, Any]:
    _bench(script, [*args, "--json", str(out)])
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def test_e2e_latency_small_run(tmp_path: Path) -> None:
    args = ["--rate", "10", "--duration", "3", "--warmup", "0.5", "--products", "120", "--magento-latency-ms", "5"]
    result = _run("e2e_latency.py", args, tmp_path / "e2e.json")
    measured = result["measured"]
    assert measured["changes"] >= 25
    assert measured["written"] + measured["superseded"] == measured["changes"]
    assert measured["lost"] == 0 and result["whole_run"]["final_state_wrong"] == 0
    latency = measured["latency_ms"]
    assert latency["n"] == measured["written"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert result["send_failures"] == 0 and result["dead_letters"] == 0
    rows = _suite().summarise_e2e(result)
    assert any("p99" in value for _, value in rows)


def test_worker_throughput_small_run(tmp_path: Path) -> None:
    args = ["--jobs", "50", "--products", "120", "--magento-latency-ms", "5"]
    result = _run("worker_throughput.py", args, tmp_path / "throughput.json")
    (row,) = result["rows"]
    assert row["written"] == row["jobs"] == 50 and row["lost"] == 0
    assert row["jobs_per_s"] > 0 and row["calls_per_job"] > 0
    assert row["job_outcomes"].get("done", 0) >= 50
    ((label, value),) = _suite().summarise_throughput(result)
    assert "max_jobs" in label and "jobs/s" in value


def test_ingest_bench_small_run_with_experiment_patches() -> None:
    """bench/ingest.py end to end (wrk, embedded Redis, both servers), through bench/gateway_variants.py and
    with --pin, so the experiment harness the performance notes rely on keeps working."""
    if not Path("/usr/bin/wrk").exists():
        pytest.fail("the ingest bench needs wrk: apt-get install -y wrk (Debian's package)")
    args = ["--duration", "1", "--connections", "4", "--warmup", "0", "--events", "4000", "--pin"]
    patches = "gc-stats,loop-stats,time=gateway.ingest:Ingestor.submit"
    stdout = _bench("ingest.py", [*args, "--patch", patches])
    written = next(line for line in stdout.splitlines() if line.startswith("wrote "))
    result = json.loads((ROOT / written.removeprefix("wrote ").strip()).read_text())
    assert result["config"]["pinned"] is True and result["config"]["experiment_patches"] == patches
    rows = {row["target"]: row for row in result["table"]}
    assert rows["bare"]["requests"] > 0 and rows["gateway"]["requests"] > 0
    assert rows["gateway"]["non_2xx"] == 0 and rows["gateway"]["ratio_gateway_bare"] > 0
    tail = "\n".join(result["gateway_log_tail"])
    assert "gc-stats gen0" in tail and "loop-stats:" in tail and "time gateway.ingest:Ingestor.submit" in tail
