"""What the demo prints around its scenario: the start-up lines, the summary table and where to look next."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from crmagento.demo_calls import DemoCalls
from crmagento.demo_support import StepResult
from crmagento.sandboxes import Sandboxes

console = Console(highlight=False)


def print_started(gateway_url: str, boxes: Sandboxes, products: int, customers: int) -> None:
    console.print(f"Gateway on [cyan]{gateway_url}[/]")
    console.print(
        f"Sandbox Magento on [cyan]{boxes.magento_url}[/] (empty, as after install); sandbox Cloud Retailer on "
        f"[cyan]{boxes.cloudretailer_url}[/] ({products} products with images, categories and stock; "
        f"{customers} customers)"
    )


def print_summary(results: list[StepResult], elapsed: float) -> None:
    console.print()
    table = Table(title="Summary", show_lines=True)
    for col in ("step", "expected", "observed"):
        table.add_column(col, overflow="fold")
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("ok", no_wrap=True)
    for r in results:
        table.add_row(r.step, r.expected, r.observed, f"{r.seconds:.1f} s", "[green]ok[/]" if r.ok else "[red]FAIL[/]")
    console.print(table)
    passed = sum(r.ok for r in results)
    colour = "green" if passed == len(results) else "red"
    console.print(f"[{colour}]{passed}/{len(results)} steps ok[/] in {elapsed:.1f} s")


async def print_urls(calls: DemoCalls, boxes: Sandboxes, log_file: Path, *, reveal: bool) -> None:
    base = calls.ep.gateway

    def hidden(value: str) -> str:
        return value if reveal else f"{value[:4]}… (shown in full with --keep-running)"

    table = Table(title="Look at", show_header=False)
    table.add_row("health", f"{base}/healthz  {base}/readyz")
    table.add_row("metrics", f"{base}/metrics")
    token = calls.ep.admin_token if reveal else "<admin token>"
    table.add_row("admin status", f"curl -H 'Authorization: Bearer {token}' {base}/admin/status")
    table.add_row("admin CLI", f"CRMAGENTO_ADMIN_URL={base} CRMAGENTO_ADMIN_TOKEN={token} crmagento status")
    if await calls.gateway_status("/admin/ui") == 200:
        table.add_row("dashboard", f"{base}/admin/ui (log in with the admin token)")
    table.add_row("admin token", hidden(calls.ep.admin_token))
    table.add_row("Magento REST", f"{boxes.magento_rest_url}  (Bearer {hidden(calls.ep.magento_token)})")
    table.add_row("Cloud Retailer API", f"{boxes.cloudretailer_url}  (Bearer {hidden(calls.ep.cr_api_key)})")
    table.add_row(
        "sandbox state", f"{boxes.magento_url}/_sandbox/health  {calls.ep.cloudretailer_root}/_sandbox/health"
    )
    table.add_row("logs", str(log_file))
    console.print(table)
