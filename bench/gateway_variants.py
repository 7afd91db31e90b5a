"""Experiments only: run `crmagento serve` with patches that model a proposed change to the gateway.

    .venv/bin/python bench/gateway_variants.py --loop asyncio|uvloop --patch NAME[,NAME...] serve --host H --port P

bench/ingest.py starts the gateway through this script when given `--loop uvloop` or `--patch`. A patch here
is a measurement aid or a quick model of an idea; a figure measured with one is never a claim about the real
gateway until the idea is moved into the code and measured again without `--patch`.

Patches (docs/performance.md has what each one measured):
    gc-stats          at exit, print to stderr how many collections of each generation ran and how long the
                      event loop was paused by them (the bench keeps the gateway log's tail in its JSON)
    gc-threshold=N    gc.set_threshold(N, ...) for the youngest generation (CPython's default is 700)
    loop-stats        at exit, event-loop iterations and the callbacks ready at their start
    time=MOD:NAME     at exit, calls and mean wall time of a function or method (e.g. gateway.ingest:Ingestor.submit)
    lean-evalsha[=deferred]  the accept script's round trip without redis-py's per-command machinery
    flusher-yield     the flusher lets the loop run once after answering a batch
    no-redis-write    every batch answered 'queued' without Redis: what the rest of the path costs
    no-metrics        webhook metrics not recorded
    no-validate       signature checked, then a fixed row: what validation costs
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import sys
import time
from collections.abc import Callable

PATCHES: dict[str, Callable[[str], None]] = {}


def patch(name: str) -> Callable[[Callable[[str], None]], Callable[[str], None]]:
    def register(fn: Callable[[str], None]) -> Callable[[str], None]:
        PATCHES[name] = fn
        return fn

    return register


@patch("gc-stats")
def _gc_stats(_: str) -> None:
    started: list[float] = [0.0]
    counts = [0, 0, 0]
    paused = [0.0, 0.0, 0.0]
    longest = [0.0, 0.0, 0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        gen = info["generation"]
        took = time.perf_counter() - started[0]
        counts[gen] += 1
        paused[gen] += took
        longest[gen] = max(longest[gen], took)

    def report() -> None:
        for gen in range(3):
            print(
                f"gc-stats gen{gen}: {counts[gen]} collections, {paused[gen] * 1000:.1f} ms paused in all, "
                f"longest {longest[gen] * 1000:.2f} ms",
                file=sys.stderr,
                flush=True,
            )

    gc.callbacks.append(callback)
    atexit.register(report)


@patch("gc-threshold")
def _gc_threshold(value: str) -> None:
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(int(value), gen1, gen2)


@patch("loop-stats")
def _loop_stats(_: str) -> None:
    """At exit: event-loop iterations, the time spent blocked in select() and callbacks run per iteration."""
    import selectors
    from asyncio import base_events

    iterations = [0]
    handles = [0]
    blocked = [0.0]
    run_once = base_events.BaseEventLoop._run_once

    def counted_run_once(self: base_events.BaseEventLoop) -> None:
        iterations[0] += 1
        handles[0] += len(self._ready)  # type: ignore[attr-defined]
        run_once(self)

    select = selectors.EpollSelector.select

    def timed_select(self: selectors.EpollSelector, timeout: float | None = None) -> list:  # type: ignore[type-arg]
        t = time.perf_counter()
        try:
            return select(self, timeout)
        finally:
            blocked[0] += time.perf_counter() - t

    base_events.BaseEventLoop._run_once = counted_run_once  # type: ignore[method-assign]
    selectors.EpollSelector.select = timed_select  # type: ignore[method-assign]

    def report() -> None:
        print(
            f"loop-stats: {iterations[0]} iterations, {handles[0]} ready callbacks at their start, "
            f"{blocked[0]:.2f} s in select()",
            file=sys.stderr,
            flush=True,
        )

    atexit.register(report)


@patch("time")
def _time(target: str) -> None:
    """time=module:Class.method or module:function: at exit, its calls and mean wall time (a coroutine
    function's figure includes its waits)."""
    import functools
    import importlib

    module_name, _, qualname = target.partition(":")
    owner: object = importlib.import_module(module_name)
    *path, name = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = [0]
    spent = [0]

    @functools.wraps(original)
    def timed(*args: object, **kwargs: object) -> object:
        t = time.perf_counter_ns()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter_ns() - t
            calls[0] += 1

    setattr(owner, name, timed)

    def report() -> None:
        mean = spent[0] / calls[0] / 1000 if calls[0] else 0.0
        print(f"time {target}: {calls[0]} calls, {mean:.2f} us each", file=sys.stderr, flush=True)

    atexit.register(report)


@patch("lean-evalsha")
def _lean_evalsha(value: str) -> None:
    """The accept script's round trip without redis-py's per-command machinery (health check, a wait_for task
    per write, a timeout context per read): write the packed command, feed the hiredis reader until a reply.
    The flusher's own deadline still bounds the whole call. `lean-evalsha=deferred` writes the command from
    a callback scheduled behind what is already ready, the order redis-py's write task gives."""
    from redis._parsers.hiredis import NOT_ENOUGH_DATA

    from gateway import scriptconn

    deferred = value == "deferred"

    async def evalsha(self: scriptconn.ScriptConnection, conn: object, args: tuple[object, ...]) -> object:
        writer = conn._writer  # type: ignore[attr-defined]
        packed = conn.pack_command("EVALSHA", self._sha, 0, *args)  # type: ignore[attr-defined]
        if deferred:
            # Written after what is already scheduled (the answered handlers' responses), as redis-py's
            # wait_for task does, but without a task.
            asyncio.get_running_loop().call_soon(writer.writelines, packed)
        else:
            writer.writelines(packed)
        reader = conn._parser._reader  # type: ignore[attr-defined]
        stream = conn._reader  # type: ignore[attr-defined]
        reply = reader.gets()
        while reply is NOT_ENOUGH_DATA:
            data = await stream.read(65536)
            if not data:
                raise ConnectionError("Redis closed the connection")
            reader.feed(data)
            reply = reader.gets()
        if isinstance(reply, Exception):
            raise reply
        return reply

    scriptconn.ScriptConnection._evalsha = evalsha  # type: ignore[method-assign]


@patch("flusher-yield")
def _flusher_yield(_: str) -> None:
    """After answering a batch, let the event loop run once (the answered handlers write their responses, more
    requests are read) before the next batch is taken and sent."""
    from gateway import ingest

    flush = ingest.Ingestor._flush

    async def flush_then_yield(self: ingest.Ingestor, conn: object, batch: list[ingest._Pending]) -> None:
        await flush(self, conn, batch)  # type: ignore[arg-type]
        await asyncio.sleep(0)

    ingest.Ingestor._flush = flush_then_yield  # type: ignore[method-assign]


@patch("no-redis-write")
def _no_redis_write(_: str) -> None:
    """Every batch is answered 'queued' without the Redis round trip: what the rest of the path costs."""
    from gateway import ingest

    async def flush(self: ingest.Ingestor, conn: object, batch: list[ingest._Pending]) -> None:
        await asyncio.sleep(0)
        for p in batch:
            if not p.future.done():
                p.future.set_result("queued")

    ingest.Ingestor._flush = flush  # type: ignore[method-assign]


@patch("no-metrics")
def _no_metrics(_: str) -> None:
    from gateway import metrics

    class _Nothing:
        def inc(self, *_: object) -> None:
            pass

        def observe(self, *_: object) -> None:
            pass

    nothing = _Nothing()
    metrics.Metrics.webhook = lambda self, *a: nothing  # type: ignore[method-assign,assignment,return-value]
    metrics.Metrics.ingest = lambda self, *a: nothing  # type: ignore[method-assign,assignment,return-value]


@patch("no-validate")
def _no_validate(_: str) -> None:
    """Signature checked, then a fixed queue row: what pydantic and the row cost."""
    from gateway import webhooks

    def check(app: object, source: object, headers: object, body: bytes) -> object:
        signed = app[webhooks.VERIFIERS][source].verify(headers, body)  # type: ignore[index]
        row = ("cloudretailer", signed.msg_id, "customer.updated", "cloudretailer:customer:" + signed.msg_id, "t", "{}")
        return row, "customer.updated"

    webhooks._check = check  # type: ignore[assignment]


def apply(spec: str) -> None:
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, value = item.partition("=")
        if name not in PATCHES:
            raise SystemExit(f"unknown patch {name!r}; known: {', '.join(sorted(PATCHES))}")
        PATCHES[name](value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--patch", default="")
    args, rest = parser.parse_known_args()
    if args.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    apply(args.patch)
    from crmagento.cli import app

    sys.argv = ["crmagento", *rest]
    app()


if __name__ == "__main__":
    main()
