"""`python -m tests.chaos [--size small|full] [--scenario NAME ...]` (`make chaos` = full size, every scenario).

Prints a table of counts and checks per scenario, writes bench/results/chaos-<timestamp>.json, and exits 1
when any check failed (2 on bad usage). Logs of every process go under the run directory it prints.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from tests.chaos.scenarios import SCENARIOS, SIZES, Outcome, Size, run_scenario

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
COUNT_ROWS = [
    ("sent", "webhooks sent by the sandboxes (unique webhook-ids)"),
    ("deliveries", "HTTP deliveries to the gateway (copies and retries included)"),
    ("accepted", "202 queued"),
    ("duplicates", "200 duplicate (suppressed)"),
    ("coalesced", "accepted events that joined a waiting job (suppressed runs)"),
    ("refused_503", "503 + Retry-After (nothing acknowledged; the sender retried)"),
    ("applied", "events done (webhooks and the workers' own follow-ups)"),
    ("skipped", "events skipped (nothing to do, e.g. order already imported)"),
    ("follow_ups", "changes the workers queued themselves (on-hand push after a product's first write)"),
    ("retried", "event tries that failed and were retried"),
    ("events_retried", "events that needed more than one try"),
    ("dead_lettered", "events dead-lettered"),
]


def report(console: Console, outcome: Outcome) -> None:
    verdict = outcome.verdict
    title = (
        f"{outcome.scenario} ({outcome.size}): {'PASS' if outcome.ok else 'FAIL'} in {outcome.seconds} s, "
        f"settled {outcome.settle_seconds} s after the stream"
    )
    table = Table(title=title, title_justify="left", show_header=True)
    table.add_column("count")
    table.add_column("value", justify="right")
    table.add_column("meaning")
    for key, meaning in COUNT_ROWS:
        table.add_row(key, str(verdict.counts.get(key, "-")), meaning)
    console.print(table)
    stream = verdict.counts.get("stream", {})
    console.print(
        f"  stream: done {stream.get('done')}, refused by the fault {stream.get('refused')}, "
        f"orders placed {stream.get('orders_placed')} / completed {stream.get('orders_completed')}"
    )
    console.print(f"  fault: {outcome.fault}")
    for check in verdict.checks:
        mark = "[green]ok[/green]  " if check.ok else "[red]FAIL[/red]"
        console.print(f"  {mark} {check.name}: {check.detail}")
    if not outcome.ok:
        console.print(f"  logs: {outcome.run_dir}")


def to_json(outcome: Outcome) -> dict[str, Any]:
    data = dataclasses.asdict(outcome)
    data["verdict"] = {
        "ok": outcome.verdict.ok,
        "checks": [dataclasses.asdict(c) for c in outcome.verdict.checks],
        "counts": outcome.verdict.counts,
    }
    return data


async def run_all(size: Size, names: list[str], base: Path, console: Console) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for name in names:
        console.print(f"[bold]{name}[/bold] ({size.name}) ...")
        outcome = await run_scenario(name, size, base / name)
        report(console, outcome)
        outcomes.append(outcome)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), help="repeatable; default: all")
    parser.add_argument("--keep-logs", action="store_true", help="keep the run directory even when all passed")
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    names = args.scenario or list(SCENARIOS)
    console = Console(width=None if sys.stdout.isatty() else 120)
    base = Path(tempfile.mkdtemp(prefix="crmagento-chaos-"))
    console.print(f"chaos: size {size.name}, scenarios {', '.join(names)}; run directory {base}")
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    outcomes = asyncio.run(run_all(size, names, base, console))
    ok = all(o.ok for o in outcomes)

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"chaos-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_bytes(
        orjson.dumps(
            {
                "started": started,
                "size": dataclasses.asdict(size),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.system()},
                "ok": ok,
                "scenarios": [to_json(o) for o in outcomes],
            },
            option=orjson.OPT_INDENT_2,
        )
    )
    console.print(f"{'all checks passed' if ok else 'SOME CHECKS FAILED'}; results in {path}")
    if ok and not args.keep_logs:
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
