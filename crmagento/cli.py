"""`crmagento`: run the gateway and workers, the sandboxes and the demo."""

from __future__ import annotations

import asyncio
import errno
import importlib
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.logs import configure_logging
from gateway.settings import ConfigError, Settings, load_settings
from workers.registry import Registry, default_registry

app = typer.Typer(
    help="Keeps a Magento 2 store in step with Cloud Retailer.",
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


def _registry(handlers_module: str | None) -> Registry:
    registry = default_registry()
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
    """Gateway and worker in one process; starts an embedded Redis when CRMAGENTO_REDIS_URL is unset."""
    from crmagento.runtime import redis_for, run_all

    settings = _settings(*WEB_REQUIRED, host=host, port=port)
    _require_sync(settings, handlers_module)
    registry = _registry(handlers_module)
    with redis_for(settings) as ready:
        _listening(run_all(ready, ready.host, ready.port, registry), ready.host, ready.port)


@app.command()
def serve(host: HostOpt = None, port: PortOpt = None) -> None:
    """Gateway only (webhooks, admin API, health). Needs CRMAGENTO_REDIS_URL."""
    from crmagento.runtime import serve_forever

    settings = _settings("redis_url", *WEB_REQUIRED, host=host, port=port)
    _listening(serve_forever(settings, settings.host, settings.port), settings.host, settings.port)


@app.command()
def worker(handlers_module: HandlersOpt = None) -> None:
    """Worker only (sync rules and crons). Needs CRMAGENTO_REDIS_URL."""
    from crmagento.runtime import worker_forever

    settings = _settings("redis_url")
    _require_sync(settings, handlers_module)
    asyncio.run(worker_forever(settings, _registry(handlers_module)))


@app.command()
def demo(
    keep_running: Annotated[bool, typer.Option("--keep-running", help="Leave everything up afterwards.")] = False,
    data_dir: Annotated[Path | None, typer.Option(help="Where the embedded Redis keeps its files.")] = None,
) -> None:
    """Everything on embedded defaults, then a scripted scenario of signed webhooks."""
    from crmagento.demo import run_demo

    settings = _settings()
    sys.exit(asyncio.run(run_demo(settings, keep_running=keep_running, data_dir=data_dir)))


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
