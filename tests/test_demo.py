"""`crmagento demo` as `make demo` runs it: a real subprocess with its own embedded Redis, both sandboxes, the
gateway and a worker on free ports; it must meet every step's expectation, well under two minutes."""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from rich.console import Console

from crmagento import demo_scenario
from crmagento.demo_calls import StepTimeout
from crmagento.demo_scenario import STEPS, run_scenario
from crmagento.demo_support import Demo, verdict
from tests.support.demo_process import demo_running, without_crmagento_env

CLI = [str(Path(sys.executable).with_name("crmagento"))]
BUDGET_S = 120


def clean_env() -> dict[str, str]:
    """No CRMAGENTO_* of the developer's shell; any free gateway port; a wide console, one line per table row."""
    return without_crmagento_env(CRMAGENTO_PORT="0", COLUMNS="220")


def verdicts(out: str) -> list[str]:
    """The ok column of the summary table, one per step (rows are top-aligned: the verdict is on the row's
    first line)."""
    return re.findall(r"│ (ok|FAIL) │\s*$", out, flags=re.MULTILINE)


def test_the_demo_meets_every_step_under_two_minutes(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [*CLI, "demo", "--data-dir", str(tmp_path / "data")],
        env=clean_env(),
        cwd=tmp_path,  # no .env of the repository's working directory
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BUDGET_S,
    )
    elapsed = time.monotonic() - started
    out = result.stdout
    assert result.returncode == 0, f"{out[-4000:]}\n{result.stderr[-4000:]}"
    assert verdicts(out) == ["ok"] * len(STEPS), out
    assert f"{len(STEPS)}/{len(STEPS)} steps ok" in out
    for title, _, _ in STEPS:
        assert title in out
    assert elapsed < BUDGET_S
    # The console is the narration: logs go to the file it names, and secrets stay hidden without --keep-running.
    assert "Traceback" not in result.stderr and "Traceback" not in out
    assert (tmp_path / "data" / "demo.log").exists()
    assert "shown in full with --keep-running" in out


def test_keep_running_leaves_everything_up_until_ctrl_c(tmp_path: Path) -> None:
    out_file = tmp_path / "demo.out"
    command = [*CLI, "demo", "--keep-running", "--products", "60", "--data-dir", str(tmp_path / "data")]
    with demo_running(command, env=clean_env(), cwd=tmp_path, out_file=out_file, budget_s=BUDGET_S) as (process, out):
        assert verdicts(out) == ["ok"] * len(STEPS), out
        gateway = re.search(r"health\s+│ (http://127\.0\.0\.1:\d+)/healthz", out)
        token = re.search(r"admin token\s+│ (\S+)", out)
        assert gateway and token, out
        auth = {"Authorization": f"Bearer {token[1]}"}
        request = urllib.request.Request(f"{gateway[1]}/admin/status", headers=auth)  # noqa: S310 (loopback http)
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310
            status = json.load(resp)
        assert status["workers"] and status["redis"] == "ok"

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, out_file.read_text(errors="replace")


def test_keep_running_stops_on_sigterm_within_5_s_even_with_a_request_hanging(tmp_path: Path) -> None:
    """A container's stop (SIGTERM, SIGKILL 10 s later) must stop it as Ctrl-C does: exit 0, no traceback, and
    no wait on a request the sandbox's faults hold open (aiohttp would give it 60 s)."""
    out_file = tmp_path / "demo.out"
    command = [*CLI, "demo", "--keep-running", "--products", "60", "--data-dir", str(tmp_path / "data")]
    with demo_running(command, env=clean_env(), cwd=tmp_path, out_file=out_file, budget_s=BUDGET_S) as (process, out):
        magento = re.search(r"Magento REST\s+│ (http://127\.0\.0\.1:(\d+))/rest/", out)
        assert magento, out
        rules = json.dumps([{"match": "GET /rest/*", "timeout_rate": 1}]).encode()
        faults = urllib.request.Request(  # noqa: S310 (loopback http)
            f"{magento[1]}/_sandbox/faults", data=rules, method="PUT", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(faults, timeout=5) as resp:  # noqa: S310
            assert resp.status == 200
        with socket.create_connection(("127.0.0.1", int(magento[2])), timeout=5) as hanging:
            hanging.sendall(b"GET /rest/V1/store/storeConfigs HTTP/1.1\r\nHost: demo\r\n\r\n")
            time.sleep(0.5)  # the sandbox is now holding it

            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=10)
            elapsed = time.monotonic() - started
        final = out_file.read_text(errors="replace")
        assert code == 0, final
        assert elapsed < 5, f"stopped in {elapsed:.1f} s"
        assert "Traceback" not in final


async def test_a_failing_step_is_reported_and_the_next_ones_still_run(monkeypatch: pytest.MonkeyPatch) -> None:
    async def stuck(demo: Demo) -> tuple[str, bool]:
        raise StepTimeout("price of CR-000001 in Magento: not seen within 20 s")

    async def fine(demo: Demo) -> tuple[str, bool]:
        return "all good", True

    monkeypatch.setattr(demo_scenario, "STEPS", [("a", "x", stuck), ("b", "y", fine)])
    console = Console(file=io.StringIO(), width=120)
    results = await run_scenario(Demo(calls=None, console=console, store_id="W-1"))  # type: ignore[arg-type]
    assert [(r.step, r.ok) for r in results] == [("a", False), ("b", True)]
    assert results[0].observed == "StepTimeout: price of CR-000001 in Magento: not seen within 20 s"


def test_a_verdict_names_the_expectations_not_met() -> None:
    assert verdict("3 synced", jobs_done=True, one_sale=True) == ("3 synced", True)
    assert verdict("3 synced", jobs_done=True, one_sale=False, web_orders_tender=False) == (
        "3 synced; NOT MET: one sale, web orders tender",
        False,
    )
