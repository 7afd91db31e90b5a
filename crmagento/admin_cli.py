"""The admin verbs of `crmagento` (status, events, dead letters, resyncs, reconciliation, jobs): what they
do and how they print. crmagento/cli.py only declares them.

Tables go to stdout for people, `--json` prints the API's answer unchanged for scripts, progress and errors
go to stderr so stdout stays parseable. Every way of failing ends in one of the exit codes of admin_api.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from crmagento.admin_api import (
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    AdminAPI,
    AdminAPIError,
    Job,
    target_from_settings,
)
from crmagento.phases_view import PhaseBars, phases_line, phases_table
from crmcore.deadletters import MAX_BULK_REPLAY
from crmcore.eventlog import STATUSES
from crmcore.events import Source
from crmcore.jobrecords import AdminJobKind
from crmcore.settings import ConfigError, load_settings
from gateway.adminjobs import RESYNCS

EXIT_CODES_HELP = (
    "Exit codes of the admin commands: 0 ok; 1 a job failed or the thing asked for does not exist; "
    "2 bad usage or configuration; 3 gateway unreachable or failing (5xx, Redis down); 4 admin token refused."
)
POLL_INTERVAL_S = 0.5


# The kinds the gateway accepts (gateway/adminjobs.py), so a new kind needs no CLI change.
ResyncKind = StrEnum("ResyncKind", [(k, k) for k in RESYNCS])  # type: ignore[misc]
# Which body field carries the ids of each resync job; one not listed takes no ids.
ID_FIELDS = {
    AdminJobKind.RESYNC_PRODUCTS: "skus",
    AdminJobKind.RESYNC_CATEGORIES: "category_ids",
    AdminJobKind.RESYNC_CUSTOMERS: "customer_ids",
    AdminJobKind.RESYNC_ORDERS: "order_ids",
}


# The choices of --status and --source, from the gateway's own lists so the two never drift apart.
EventStatus = StrEnum("EventStatus", [(s, s) for s in STATUSES])  # type: ignore[misc]
EventSource = StrEnum("EventSource", [(s.value, s.value) for s in Source])  # type: ignore[misc]


# ----------------------------------------------------------------------------- plumbing


def _console(*, stderr: bool = False) -> Console:
    # Piped output (CI logs, `| less`) gets wide lines instead of rich's 80 columns, so ids stay whole.
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or "COLUMNS" in os.environ else 200
    return Console(file=stream, width=width, highlight=False)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"crmagento: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """API errors and bad settings end the command with one line and their exit code, never a traceback."""
    try:
        yield
    except AdminAPIError as exc:
        _fail(str(exc), exc.exit_code)


def connect() -> AdminAPI:
    """The admin API client from CRMAGENTO_ADMIN_URL and the token settings (or .env); bad ones exit 2."""
    try:
        return AdminAPI(target_from_settings(load_settings()))
    except ConfigError as exc:
        _fail(f"configuration error\n{exc}", EXIT_USAGE)
    except AdminAPIError as exc:
        _fail(str(exc), exc.exit_code)


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _cell(value: object) -> Text:
    # Text, not markup: ids and errors may hold `[...]` that rich would otherwise eat.
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, dict | list):
        return Text(json.dumps(value, ensure_ascii=False))
    return Text(str(value))


def _fields(title: str, rows: dict[str, object]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in rows.items():
        table.add_row(key, _cell(value))
    return table


_STATUS_STYLE = {
    "done": "green",
    "skipped": "cyan",
    "failed": "yellow",
    "dead": "red",
    "processing": "blue",
    "parked": "magenta",
}
_REMOTE_STYLE = {"up": "green", "unavailable": "yellow", "misconfigured": "red"}


# ----------------------------------------------------------------------------- status


def status(*, as_json: bool) -> None:
    api = connect()
    with _errors():
        snap = api.status()
    if as_json:
        _print_json(snap)
        return
    out = _console()
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(snap.get("jobs", {}).items())) or None
    out.print(
        _fields(
            f"Gateway {api.url}",
            {
                "Redis": snap.get("redis"),
                "Queue depth": snap.get("queue_depth"),
                "Workers": len(snap.get("workers", [])),
                "Dead letters": snap.get("dead_letters"),
                "Recent events": snap.get("recent_events"),
                "Event outcomes": outcomes,
            },
        )
    )
    workers = Table(title="Workers", title_justify="left")
    for name in ("id", "host", "pid", "jobs running", "heartbeat age"):
        workers.add_column(name, overflow="fold")
    for w in snap.get("workers", []):
        age = w.get("age_seconds")
        workers.add_row(
            _cell(w.get("id")),
            _cell(w.get("host")),
            _cell(w.get("pid")),
            _cell(w.get("jobs_running")),
            Text(f"{age} s", style="red" if age is not None and age > 60 else ""),
        )
    out.print(workers if snap.get("workers") else Text("No worker has reported in the last 24 hours.", style="red"))
    if snap.get("remotes"):
        out.print(_remotes_table(snap["remotes"]))
    if snap.get("domains"):
        out.print(_domains_table(snap["domains"]))
    if snap.get("stock_links"):
        out.print(_links_table(snap["stock_links"]))
    for name, report in snap.get("reports", {}).items():
        out.print(_fields(f"Last report: {name}", report if isinstance(report, dict) else {"value": report}))


def _links_table(links: list[dict[str, Any]]) -> Table:
    """Each Cloud Retailer location and the Magento source it feeds, with the last reconciliation's figures."""
    table = Table(title="Stock links (last reconciliation)", title_justify="left")
    for name in ("location", "source", "drift found", "written", "held SKUs", "reconciled"):
        table.add_column(name, overflow="fold")
    for link in links:
        drift = link.get("drift_found")
        table.add_row(
            _cell(f"{link.get('location_id')}{' (default)' if link.get('default') else ''}"),
            _cell(link.get("source_code")),
            Text("-" if drift is None else str(drift), style="yellow" if drift else ""),
            _cell(link.get("drift_fixed")),
            _cell(link.get("held_skus")),
            _cell(link.get("last_reconcile") or "never"),
        )
    return table


def _domains_table(domains: dict[str, dict[str, Any]]) -> Table:
    """Per domain: how fresh Magento is, and how far behind the sync runs (last 15 minutes)."""
    table = Table(title="Domains (last 15 minutes)", title_justify="left")
    for name in ("domain", "newest change applied", "lag p50", "lag p99", "applied", "failed"):
        table.add_column(name, overflow="fold")
    for name, d in domains.items():
        age = d.get("age_seconds")
        failed = d.get("failed_15m") or 0
        table.add_row(
            _cell(name),
            _cell(f"{age:.0f} s ago" if isinstance(age, int | float) else "never"),
            _cell(_ms(d.get("lag_p50_ms"))),
            _cell(_ms(d.get("lag_p99_ms"))),
            _cell(d.get("applied_15m")),
            Text(str(failed), style="red" if failed else ""),
        )
    return table


def _ms(value: Any) -> str | None:
    return None if value is None else f"{float(value):.0f} ms"


def _remotes_table(remotes: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="Remotes", title_justify="left")
    for name in ("remote", "state", "since", "last error / reason", "parked entities", "parked events"):
        table.add_column(name, overflow="fold")
    for name, r in remotes.items():
        state = str(r.get("state"))
        reason = r.get("error")
        # The setting's name tells the operator which variable to fix (the workers' checks put it first).
        setting = r.get("setting")
        if setting and not str(reason or "").startswith(setting):
            reason = f"{setting}: {reason}" if reason else setting
        table.add_row(
            _cell(name),
            Text(state, style=_REMOTE_STYLE.get(state, "")),
            _cell(r.get("since")),
            _cell(reason),
            _cell(r.get("parked")),
            _cell(r.get("parked_events")),
        )
    return table


# ----------------------------------------------------------------------------- events


def events_list(*, status_filter: str | None, limit: int, as_json: bool) -> None:
    api = connect()
    with _errors():
        items = api.events(limit=limit, status=status_filter)
    if as_json:
        _print_json({"items": items})
        return
    table = Table(title=f"Recent events ({len(items)})", title_justify="left")
    for name in ("received", "id", "source", "type", "entity", "status", "tries", "last error"):
        table.add_column(name, overflow="fold")
    for e in items:
        table.add_row(
            _cell(e.get("received_at")),
            _cell(e.get("id")),
            _cell(e.get("source")),
            _cell(e.get("type")),
            _cell(e.get("entity")),
            Text(str(e.get("status")), style=_STATUS_STYLE.get(str(e.get("status")), "")),
            _cell(e.get("attempts")),
            _cell(e.get("last_error")),
        )
    _console().print(table)


def events_show(event_id: str, *, source: str | None, as_json: bool) -> None:
    api = connect()
    with _errors():
        record = api.event(event_id, source=source)
    if as_json:
        _print_json(record)
        return
    _console().print(_fields(f"Event {event_id}", record))


# ----------------------------------------------------------------------------- trace

# A timeline says "retrying" where the event log says "failed": the same colour.
_TIMELINE_STATUS = {"retrying": "failed"}


def trace(query: str, *, as_json: bool) -> None:
    """The timeline of every entity `query` names, newest first; nothing known by that name is exit 1."""
    api = connect()
    with _errors():
        answer = api.trace(query)
    if as_json:
        _print_json(answer)
        return
    console = _console()
    for match in answer["matches"]:
        console.print(_timeline_table(match))


def _timeline_table(match: dict[str, Any]) -> Table:
    # A title is rendered as markup, and the entity and its aliases come from outside (a SKU may hold `[`).
    aliases = ", ".join(match.get("aliases") or [])
    title = escape(f"{match['entity']}" + (f" ({aliases})" if aliases else ""))
    table = Table(title=title, title_justify="left")
    for name in ("at", "what", "event", "type", "job", "try", "error / reason", "detail"):
        table.add_column(name, overflow="fold")
    for e in match["timeline"]:
        what = str(e.get("what"))
        table.add_row(
            _cell(e.get("at")),
            Text(what, style=_STATUS_STYLE.get(_TIMELINE_STATUS.get(what, what), "")),
            _cell(e.get("event")),
            _cell(e.get("type")),
            _cell(e.get("job")),
            _cell(e.get("attempt")),
            _cell(e.get("error") or e.get("reason")),
            _cell(e.get("detail")),
        )
    return table


# ----------------------------------------------------------------------------- dead letters


def dead_letters_list(*, limit: int, offset: int, as_json: bool) -> None:
    api = connect()
    with _errors():
        page = api.dead_letters(limit=limit, offset=offset)
    if as_json:
        _print_json(page)
        return
    table = Table(title=f"Dead letters ({page['total']} in all)", title_justify="left")
    for name in ("id", "failed at", "entity", "type", "tries", "events", "reason"):
        table.add_column(name, overflow="fold")
    for dl in page["items"]:
        table.add_row(
            _cell(dl.get("id")),
            _cell(dl.get("failed_at")),
            _cell(dl.get("entity")),
            _cell(dl.get("type")),
            _cell(dl.get("attempts")),
            _cell(len(dl.get("event_ids", []))),
            _cell(dl.get("reason")),
        )
    out = _console()
    out.print(table)
    if page["total"]:
        out.print("Replay one with: crmagento dead-letters replay ID (or many: --reason TEXT, --type TYPE, --all)")


def dead_letters_show(dl_id: str, *, as_json: bool) -> None:
    api = connect()
    with _errors():
        dl = api.dead_letter(dl_id)
    if as_json:
        _print_json(dl)
        return
    _console().print(_fields(f"Dead letter {dl_id}", dl))


def dead_letters_replay(
    dl_id: str | None,
    *,
    replay_all: bool = False,
    reason: str | None = None,
    event_type: str | None = None,
    as_json: bool,
) -> None:
    """One dead letter by id, or every one a filter takes; exactly one of the three ways, else exit 2."""
    given = [
        name
        for name, on in (
            ("ID", dl_id is not None),
            ("--all", replay_all),
            ("--reason/--type", reason is not None or event_type is not None),
        )
        if on
    ]
    if len(given) != 1:
        got = f" (got {' and '.join(given)})" if given else ""
        _fail(f"dead-letters replay: give one of ID, --all, or --reason and/or --type{got}", EXIT_USAGE)
    if dl_id is None:
        _replay_matching(replay_all=replay_all, reason=reason, event_type=event_type, as_json=as_json)
        return
    api = connect()
    with _errors():
        answer = api.replay(dl_id)
    if as_json:
        _print_json(answer)
        return
    events = ", ".join(answer.get("event_ids", [])) or "none"
    typer.echo(f"dead letter {dl_id} requeued; events: {events}")


def _replay_matching(*, replay_all: bool, reason: str | None, event_type: str | None, as_json: bool) -> None:
    api = connect()
    with _errors():
        answer = api.replay_matching(replay_all=replay_all, reason=reason, event_type=event_type)
    if as_json:
        _print_json(answer)
        return
    replayed, matched = answer["replayed"], answer["matched"]
    if not matched:
        typer.echo("replayed 0 dead letters: none matched")
        return
    typer.echo(f"replayed {_plural(replayed, 'dead letter')} ({_plural(answer['events'], 'event')})")
    if matched > replayed:
        typer.echo(f"{matched - replayed} of the {matched} matched were replayed by someone else meanwhile", err=True)
    if matched >= MAX_BULK_REPLAY:
        typer.echo(f"at most {MAX_BULK_REPLAY} per call: run it again for the rest", err=True)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# ----------------------------------------------------------------------------- admin jobs


def resync_body(kind: str, ids: list[str], since: str | None) -> dict[str, Any]:
    """The request body of POST /admin/resync/{kind}; no ids means every record of that kind."""
    job = RESYNCS[kind].kind
    if since is not None and job is not AdminJobKind.RESYNC_ORDERS:
        _fail("--since applies to orders only", EXIT_USAGE)
    body: dict[str, Any] = {}
    if ids:
        if job not in ID_FIELDS:
            _fail(f"resync {kind} takes no ids", EXIT_USAGE)
        if job is AdminJobKind.RESYNC_ORDERS:
            try:
                body[ID_FIELDS[job]] = [int(i) for i in ids]
            except ValueError:
                _fail("order ids are Magento entity ids (integers)", EXIT_USAGE)
        else:
            body[ID_FIELDS[job]] = ids
    if since is not None:
        body["since"] = since
    return body


def resync(kind: str, ids: list[str], *, since: str | None, wait: bool, as_json: bool) -> None:
    api = connect()
    body = resync_body(kind, ids, since)
    with _errors():
        queued = api.resync(kind, body)
    _after_queueing(api, queued, wait=wait, as_json=as_json)


def reconcile_inventory(*, dry_run: bool, wait: bool, as_json: bool) -> None:
    api = connect()
    with _errors():
        queued = api.reconcile_inventory(dry_run=dry_run)
    _after_queueing(api, queued, wait=wait, as_json=as_json)


def _after_queueing(api: AdminAPI, queued: dict[str, Any], *, wait: bool, as_json: bool) -> None:
    job_id = queued["job_id"]
    if not wait:
        if as_json:
            _print_json(queued)
        else:
            typer.echo(job_id)
            typer.echo(f"queued; follow it with: crmagento jobs show {job_id} --wait", err=True)
        return
    _finish(follow(api, job_id, show_progress=not as_json), as_json=as_json)


def initial_sync(*, orders_since: str | None, wait: bool, as_json: bool) -> None:
    """POST /admin/sync/initial; a running one is named in the 409, with how to follow it."""
    body: dict[str, Any] = {}
    if orders_since is not None:
        try:
            datetime.fromisoformat(orders_since)
        except ValueError:
            _fail("--orders-since: an ISO 8601 time, e.g. 2026-01-31T00:00:00Z", EXIT_USAGE)
        body["orders_since"] = orders_since
    api = connect()
    try:
        queued = api.initial_sync(body)
    except AdminAPIError as exc:
        hint = " (follow it: crmagento jobs show <id> --wait)" if exc.status == 409 else ""
        _fail(f"{exc}{hint}", exc.exit_code)
    _after_queueing(api, queued, wait=wait, as_json=as_json)


def jobs_show(job_id: str, *, wait: bool, as_json: bool) -> None:
    api = connect()
    if wait:
        _finish(follow(api, job_id, show_progress=not as_json), as_json=as_json)
        return
    with _errors():
        job = _job(api.job(job_id))
    _finish(job, as_json=as_json)


def jobs_list(*, as_json: bool) -> None:
    api = connect()
    with _errors():
        items = api.jobs()
    if as_json:
        _print_json({"items": items})
        return
    table = Table(title=f"Admin jobs ({len(items)})", title_justify="left")
    for name in ("id", "status", "progress", "created", "finished", "error"):
        table.add_column(name, overflow="fold")
    for raw in items:
        job = _job(raw)
        table.add_row(
            _cell(job.id),
            _cell(job.status),
            _cell(_progress_text(job)),
            _cell(job.created),
            _cell(job.finished),
            _cell(job.error or (f"waiting: {job.reason}" if job.status == "waiting" else None)),
        )
    _console().print(table)


def _job(raw: dict[str, Any]) -> Job:
    try:
        return Job.model_validate(raw)
    except ValidationError:
        _fail("the gateway answered a job record this CLI does not understand", EXIT_UNREACHABLE)


def _progress_text(job: Job) -> str:
    p = job.progress
    total = "?" if p.total is None else str(p.total)
    failed = f", {p.failed} failed" if p.failed else ""
    return f"{p.done + p.failed}/{total}{failed}"


def _finish(job: Job, *, as_json: bool) -> None:
    """Print a job's outcome; a failed job ends with exit 1."""
    if as_json:
        _print_json(job.model_dump(mode="json"))
    else:
        rows: dict[str, object] = {
            "status": job.status,
            "progress": _progress_text(job),
            "params": job.params or None,
            "created": job.created,
            "started": job.started,
            "finished": job.finished,
        }
        if job.error:
            rows["error"] = job.error
        if job.phases:
            _console().print(phases_table(job))
        else:
            for key, value in (job.result or {}).items():
                rows[f"result.{key}"] = value
        _console().print(_fields(f"Job {job.id}", rows))
    if job.status == "failed":
        if not as_json:
            typer.echo(f"crmagento: job {job.id} failed: {job.error}", err=True)
        raise typer.Exit(EXIT_FAILED)


def follow(api: AdminAPI, job_id: str, *, show_progress: bool, sleep: Callable[[float], None] = time.sleep) -> Job:
    """Poll GET /admin/jobs/{id} until the job is done or failed, showing its progress on stderr: a rich bar
    on a terminal, one line per change otherwise (logs, CI). Ctrl-C stops watching, not the job."""
    err = _console(stderr=True)
    try:
        if show_progress and err.is_terminal:
            return _follow_with_bar(api, job_id, err, sleep)
        return _follow_with_lines(api, job_id, err if show_progress else None, sleep)
    except KeyboardInterrupt:
        typer.echo(f"\nstopped watching; job {job_id} keeps running: crmagento jobs show {job_id}", err=True)
        raise typer.Exit(130) from None
    except AdminAPIError as exc:
        _fail(f"{exc} (job {job_id} may still be running: crmagento jobs show {job_id})", exc.exit_code)


def _follow_with_bar(api: AdminAPI, job_id: str, err: Console, sleep: Callable[[float], None]) -> Job:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(job_id, total=None, failed="")
        phases = PhaseBars(bar)
        while True:
            job = _job(api.job(job_id))
            phases.update(job)
            p = job.progress
            bar.update(
                task,
                description=f"{job_id} [{job.status}]",
                completed=p.done + p.failed,
                total=p.total if p.total is not None else (p.done + p.failed if job.finished_for_good else None),
                failed=f"{p.failed} failed" if p.failed else "",
            )
            if job.finished_for_good:
                return job
            sleep(POLL_INTERVAL_S)


def _follow_with_lines(api: AdminAPI, job_id: str, err: Console | None, sleep: Callable[[float], None]) -> Job:
    last: str | None = None
    while True:
        job = _job(api.job(job_id))
        line = f"{job_id}: {job.status} {_progress_text(job)}{phases_line(job)}"
        if err is not None and line != last:
            err.print(Text(line))
            last = line
        if job.finished_for_good:
            return job
        sleep(POLL_INTERVAL_S)
