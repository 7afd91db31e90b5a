"""What the demo's steps share: the `Demo` they act through, their result, and helpers to pick products and
follow admin jobs with a progress bar."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from crmagento.demo_calls import DemoCalls, until

SYNC_TIMEOUT = 90.0  # one whole-catalog job; 300 products take about 3 s on 2 cores, 2000 about 8 s
CHANGE_TIMEOUT = 20.0  # one change travelling webhook -> gateway -> worker -> the other system


@dataclass
class Demo:
    calls: DemoCalls
    console: Console
    store_id: str  # the Cloud Retailer store linked to Magento
    catalog: list[dict[str, Any]] = field(default_factory=list)
    used: set[str] = field(default_factory=set)  # SKUs an earlier step changed: each step takes fresh ones
    customer: dict[str, Any] = field(default_factory=dict)  # step 4's account, used by the order in step 5

    def say(self, text: str) -> None:
        self.console.print(f"  [cyan]→[/] {text}")

    def evidence(self, text: str) -> None:
        self.console.print(f"    [dim]{text}[/]")


@dataclass(frozen=True)
class StepResult:
    step: str
    expected: str
    observed: str
    ok: bool
    seconds: float


def is_shoes(product: dict[str, Any]) -> bool:
    """The sandbox Magento has no "Shoes" attribute set, so these products fail by design."""
    return any(s["primary"] and s["name"] == "Shoes" for s in product["attribute_sets"])


async def pick(demo: Demo, *, min_on_hand: float = 0) -> dict[str, Any]:
    """A web-active product the initial sync created and no earlier step touched."""
    for product in demo.catalog:
        if product["sku"] in demo.used or not product["web_active"] or product["deleted"] or is_shoes(product):
            continue
        if min_on_hand and await demo.calls.on_hand(demo.store_id, product["sku"]) < min_on_hand:
            continue
        demo.used.add(product["sku"])
        return product
    raise LookupError("no unused web-active product left in the catalog (use more --products)")


async def follow_job(demo: Demo, label: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Start an admin job and draw its progress (GET /admin/jobs/{id}: done, failed, total) until it ends."""
    job_id = await demo.calls.start_job(path, body)
    demo.say(f"POST {path} -> job [bold]{job_id}[/]")
    columns = (
        TextColumn("    {task.description:<11}"),
        BarColumn(bar_width=40),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failed]} failed[/]"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=demo.console) as bar:
        task = bar.add_task(label, total=None, failed=0)

        async def ended() -> dict[str, Any] | None:
            job = await demo.calls.job(job_id)
            progress = job["progress"]
            bar.update(
                task,
                total=progress["total"],
                completed=progress["done"] + progress["failed"],
                failed=progress["failed"],
            )
            return job if job["status"] in ("done", "failed") else None

        return await until(ended, SYNC_TIMEOUT, f"job {job_id}", interval=0.25)


def verdict(observed: str, **expectations: bool) -> tuple[str, bool]:
    """A step's outcome: ok when every expectation held; the ones that did not are named in what it observed."""
    missed = [name.replace("_", " ") for name, held in expectations.items() if not held]
    return (f"{observed}; NOT MET: {', '.join(missed)}" if missed else observed), not missed


def fmt_qty(quantity: float | None) -> str:
    """A quantity as people write it (17, 2.5), or "none" for a SKU without a source item."""
    return "none" if quantity is None else f"{quantity:g}"


def attr(product: dict[str, Any], code: str) -> Any:
    return next((a["value"] for a in product.get("custom_attributes", []) if a["attribute_code"] == code), None)


async def timed_until(check: Callable[[], Awaitable[Any]], what: str) -> float:
    started = time.monotonic()
    await until(check, CHANGE_TIMEOUT, what)
    return time.monotonic() - started
