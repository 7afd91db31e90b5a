"""`crmagento`: run the gateway and workers, the sandboxes and the demo."""

from __future__ import annotations

import asyncio
import errno
import importlib
import sys
from collections.abc import Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from crmagento import admin_cli
from crmcore.logs import configure_logging
from crmcore.settings import ConfigError, Settings, load_settings
from workers.registry import Registry, default_registry

app = typer.Typer(
    help="Keeps a Magento 2 store in step with Cloud Retailer.",
    epilog=admin_cli.EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

WEB_REQUIRED = ("cr_webhook_secrets", "magento_webhook_secrets", "admin_tokens")


def _settings(*required: str, **overrides: object) -> Settings:
    """Load settings or exit 2 with one line per bad variable (never a traceback, never a value)."""
    try:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
        settings.require(*required)
    except ConfigError as exc:
        typer.echo(f"crmagento: configuration error\n{exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


# Errors of binding the listening socket: an operator problem (port taken, privileged port), not a crash.
_LISTEN_ERRNOS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)


def _listening(main: Coroutine[Any, Any, None], host: str, port: int) -> None:
    """Run `main`; a socket that cannot be bound exits 1 with one line instead of a traceback."""
    try:
        asyncio.run(main)
    except OSError as exc:
        if exc.errno not in _LISTEN_ERRNOS:
            raise
        typer.echo(f"crmagento: cannot listen on {host}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None


def _require_sync(settings: Settings, handlers_module: str | None) -> None:
    """A worker with the shipped rules and no way to reach Magento or Cloud Retailer would dead-letter every
    event: refuse to start instead. (`--handlers-module` builds, used by tests, bring their own needs.)"""
    if handlers_module is not None:
        return
    try:
        settings.require_sync()
    except ConfigError as exc:
        typer.echo(f"crmagento: configuration error\n{exc}", err=True)
        raise typer.Exit(2) from None


def _registry(settings: Settings, handlers_module: str | None) -> Registry:
    registry = default_registry(settings)
    if handlers_module:
        # Extra handlers (tests, site-specific rules): a module exposing register(registry).
        importlib.import_module(handlers_module).register(registry)
    return registry


HostOpt = Annotated[str | None, typer.Option("--host", help="Listen address [CRMAGENTO_HOST]")]
PortOpt = Annotated[int | None, typer.Option("--port", help="Listen port [CRMAGENTO_PORT]")]
HandlersOpt = Annotated[
    str | None, typer.Option("--handlers-module", hidden=True, help="Module with register(registry).")
]


@app.command()
def run(host: HostOpt = None, port: PortOpt = None, handlers_module: HandlersOpt = None) -> None:
    """Gateway and worker in one process; starts an embedded Redis when no Redis (URL or Sentinels) is set."""
    from crmagento.runtime import redis_for, run_all

    settings = _settings(*WEB_REQUIRED, host=host, port=port)
    _require_sync(settings, handlers_module)
    registry = _registry(settings, handlers_module)
    with redis_for(settings) as ready:
        _listening(run_all(ready, ready.host, ready.port, registry), ready.host, ready.port)


@app.command()
def serve(host: HostOpt = None, port: PortOpt = None) -> None:
    """Gateway only (webhooks, admin API, health). Needs CRMAGENTO_REDIS_URL or CRMAGENTO_REDIS_SENTINELS."""
    from crmagento.runtime import serve_forever

    settings = _settings("redis_url", *WEB_REQUIRED, host=host, port=port)
    _listening(serve_forever(settings, settings.host, settings.port), settings.host, settings.port)


@app.command()
def worker(handlers_module: HandlersOpt = None) -> None:
    """Worker only (sync rules and crons). Needs CRMAGENTO_REDIS_URL or CRMAGENTO_REDIS_SENTINELS."""
    from crmagento.runtime import worker_forever

    settings = _settings("redis_url")
    _require_sync(settings, handlers_module)
    asyncio.run(worker_forever(settings, _registry(settings, handlers_module)))


@app.command()
def demo(
    keep_running: Annotated[bool, typer.Option("--keep-running", help="Leave everything up afterwards.")] = False,
    data_dir: Annotated[Path | None, typer.Option(help="Where the embedded Redis keeps its files.")] = None,
    products: Annotated[int, typer.Option(min=20, max=5000, hidden=True, help="Products in Cloud Retailer.")] = 300,
) -> None:
    """Embedded Redis, both sandboxes, gateway and worker, then a narrated sync scenario with a summary."""
    from crmagento.demo import run_demo

    settings = _settings()
    sys.exit(asyncio.run(run_demo(settings, keep_running=keep_running, data_dir=data_dir, products=products)))


class _OneLineUsageErrors(typer.core.TyperCommand):
    """A bad option is one line on stderr and exit 2 (typer would draw a multi-line panel)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as exc:
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            typer.echo(f"crmagento {self.name}: {' '.join(message.split())}", err=True)
            raise typer.Exit(2) from None


@app.command(cls=_OneLineUsageErrors)
def sandbox(
    magento_port: Annotated[
        int, typer.Option("--magento-port", min=0, max=65535, help="Sandbox Magento port (0: any).")
    ],
    cr_port: Annotated[int, typer.Option("--cr-port", min=0, max=65535, help="Sandbox Cloud Retailer port (0: any).")],
    gateway_url: Annotated[
        str,
        typer.Option(
            "--gateway-url",
            help="Gateway base URL: webhooks go to URL/webhooks/cloudretailer, callbacks to URL/webhooks/magento.",
        ),
    ],
    products: Annotated[int, typer.Option(min=0, max=1_000_000, help="Products in Cloud Retailer.")] = 200,
    seed: Annotated[int, typer.Option(help="Same seed, same catalog.")] = 1,
    customers: Annotated[int, typer.Option(min=0, max=1_000_000, help="Customers in Cloud Retailer.")] = 50,
    magento_products: Annotated[
        int, typer.Option(min=0, help="First N catalog products pre-loaded in Magento as if synced (default: empty).")
    ] = 0,
    faults: Annotated[
        Path | None,
        typer.Option(help='JSON fault rules from the start: a list, or {"magento": [...], "cloudretailer": [...]}.'),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Listen address of both.")] = "127.0.0.1",
    msi: Annotated[
        bool, typer.Option("--msi/--no-msi", help="--no-msi: a Magento without MSI (legacy stock items only).")
    ] = True,
    styles: Annotated[
        bool,
        typer.Option(
            "--styles/--no-styles", help="--no-styles: apparel and footwear as plain products, not style variants."
        ),
    ] = True,
) -> None:
    """The sandbox Magento and Cloud Retailer servers, seeded, using the gateway's CRMAGENTO_ credentials."""
    from crmagento.sandboxes import (
        ListenError,
        SandboxError,
        configs_from_settings,
        load_fault_plan,
        run_until_stopped,
    )

    settings = _settings()
    try:
        configs = configs_from_settings(
            settings,
            gateway_url=gateway_url,
            products=products,
            customers=customers,
            seed=seed,
            magento_products=magento_products,
            faults=load_fault_plan(faults) if faults else None,
        )
        if not msi:
            configs = replace(configs, magento=configs.magento.model_copy(update={"msi": False}))
        if not styles:
            configs = replace(configs, cloudretailer=configs.cloudretailer.model_copy(update={"styles": False}))
        asyncio.run(
            run_until_stopped(
                configs, host=host, magento_port=magento_port, cloudretailer_port=cr_port, echo=typer.echo
            )
        )
    except ListenError as exc:
        typer.echo(f"crmagento sandbox: {exc}", err=True)
        raise typer.Exit(1) from None
    except SandboxError as exc:
        typer.echo(f"crmagento sandbox: {exc}", err=True)
        raise typer.Exit(2) from None


# ---- admin verbs on the gateway's admin API: declarations only, the logic is in crmagento/admin_cli.py ----

ADMIN = "Admin (the gateway at CRMAGENTO_ADMIN_URL, token from CRMAGENTO_ADMIN_TOKEN)"
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer, for scripts.")]
WaitOpt = Annotated[
    bool, typer.Option("--wait/--no-wait", help="Follow the job with a progress bar until it ends, or return its id.")
]

events_app = typer.Typer(help="The event log (kept 7 days).", no_args_is_help=True)
dead_letters_app = typer.Typer(help="Events the workers gave up on; replay them once fixed.", no_args_is_help=True)
jobs_app = typer.Typer(help="Admin jobs: force resyncs and reconciliations.", no_args_is_help=True)
reconcile_app = typer.Typer(help="Compare and repair now instead of waiting for the cron.", no_args_is_help=True)
sync_app = typer.Typer(help="Sync everything at once (a new installation).", no_args_is_help=True)
app.add_typer(events_app, name="events", rich_help_panel=ADMIN)
app.add_typer(dead_letters_app, name="dead-letters", rich_help_panel=ADMIN)
app.add_typer(jobs_app, name="jobs", rich_help_panel=ADMIN)
app.add_typer(reconcile_app, name="reconcile", rich_help_panel=ADMIN)
app.add_typer(sync_app, name="sync", rich_help_panel=ADMIN)


@app.command("status", rich_help_panel=ADMIN)
def status_(as_json: JsonOpt = False) -> None:
    """Redis, queue depth, workers and their heartbeat, dead letters, the last reconciliation and poll reports."""
    admin_cli.status(as_json=as_json)


@app.command(rich_help_panel=ADMIN)
def resync(
    kind: Annotated[admin_cli.ResyncKind, typer.Argument(help="What to resync.")],
    ids: Annotated[
        list[str] | None,
        typer.Argument(help="SKUs (products), category, customer or order ids; none: every record of that kind."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Orders only: completed since this ISO 8601 time (e.g. 2026-01-31T00:00:00Z).")
    ] = None,
    wait: WaitOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Force a resync of products, categories, customers or orders (all, or the ids given)."""
    admin_cli.resync(kind.value, ids or [], since=since, wait=wait, as_json=as_json)


@reconcile_app.command("inventory")
def reconcile_inventory(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report the drift, write nothing.")] = False,
    wait: WaitOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Reconcile Magento's stock with Cloud Retailer's on-hand now."""
    admin_cli.reconcile_inventory(dry_run=dry_run, wait=wait, as_json=as_json)


@app.command(rich_help_panel=ADMIN)
def trace(
    query: Annotated[str, typer.Argument(metavar="SKU|ORDER|EMAIL|EVENT_ID", help="What you know the thing by.")],
    as_json: JsonOpt = False,
) -> None:
    """What happened to X: the events, jobs, outcomes and errors of the entity X names, newest first."""
    admin_cli.trace(query, as_json=as_json)


@sync_app.command("initial")
def sync_initial(
    orders_since: Annotated[
        str | None,
        typer.Option(help="Also import orders completed since this ISO 8601 time; none: no orders."),
    ] = None,
    wait: WaitOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Categories (the whole tree), products, customers, the stock reconciliation, then orders: one job, in order."""
    admin_cli.initial_sync(orders_since=orders_since, wait=wait, as_json=as_json)


@events_app.command("list")
def events_list(
    status: Annotated[
        admin_cli.EventStatus | None, typer.Option("--status", help="Only events in this status.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many at most.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Recent events, newest first."""
    admin_cli.events_list(status_filter=status.value if status else None, limit=limit, as_json=as_json)


@events_app.command("show")
def events_show(
    event_id: Annotated[str, typer.Argument(metavar="ID", help="The webhook-id the event was delivered with.")],
    source: Annotated[
        admin_cli.EventSource | None,
        typer.Option("--source", help="Whose id it is; needed only when both sources used it."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """One event's record: status, attempts, last error, data."""
    admin_cli.events_show(event_id, source=source.value if source else None, as_json=as_json)


@dead_letters_app.command("list")
def dead_letters_list(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many at most.")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many (newest first).")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Dead letters, newest first, with the reason."""
    admin_cli.dead_letters_list(limit=limit, offset=offset, as_json=as_json)


@dead_letters_app.command("show")
def dead_letters_show(dl_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonOpt = False) -> None:
    """One dead letter."""
    admin_cli.dead_letters_show(dl_id, as_json=as_json)


@dead_letters_app.command("replay")
def dead_letters_replay(
    dl_id: Annotated[str | None, typer.Argument(metavar="ID", help="One dead letter, by id.")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Those whose reason contains TEXT (any case).", metavar="TEXT")
    ] = None,
    event_type: Annotated[
        str | None, typer.Option("--type", help="Those of this event type, e.g. product.updated.", metavar="TYPE")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Put dead letters' events back on their entity's queue: one ID, --all, or --reason and/or --type."""
    admin_cli.dead_letters_replay(dl_id, replay_all=replay_all, reason=reason, event_type=event_type, as_json=as_json)


@jobs_app.command("show")
def jobs_show(
    job_id: Annotated[str, typer.Argument(metavar="ID")],
    wait: Annotated[bool, typer.Option("--wait", help="Follow it with a progress bar until it ends.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """One admin job: status, progress, result (exit 1 when it failed)."""
    admin_cli.jobs_show(job_id, wait=wait, as_json=as_json)


@jobs_app.command("list")
def jobs_list(as_json: JsonOpt = False) -> None:
    """The most recent admin jobs."""
    admin_cli.jobs_list(as_json=as_json)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
