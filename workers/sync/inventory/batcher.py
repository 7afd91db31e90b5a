"""Stock changes that arrive together share one Magento write.

Every SKU is its own entity in the queue (store + SKU), so each change runs as its own job; a worker runs
up to CRMAGENTO_WORKER_MAX_JOBS of them at once, and that is when many SKUs arrive together. Each job
hands its SKU's quantity to this worker's batcher and waits: the batcher sends one batch once
CRMAGENTO_INVENTORY_BATCH_SIZE SKUs are waiting, or CRMAGENTO_INVENTORY_BATCH_WAIT_SECONDS after the first
one came, and answers every job with its own SKU's outcome.

Nothing is held outside the jobs: a job is settled (its events marked done) only after the write carrying
its quantity returned, and if the worker dies the jobs die with it and arq runs them again. The write is an
upsert of an absolute quantity, so running a batch twice changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

import structlog

from workers.errors import StaleJob, TransientError
from workers.fence import CURRENT_FENCE, Fence
from workers.sync.inventory.stock import Outcome, Target

log = structlog.get_logger(__name__)

Apply = Callable[[Sequence[Target]], Awaitable[dict[str, Outcome | BaseException]]]


class Batcher:
    def __init__(self, apply: Apply, size: int, wait_seconds: float) -> None:
        self.apply = apply
        self.size = max(1, size)
        self.wait = wait_seconds
        # lower-case SKU -> (newest target, the futures of every job waiting on that SKU)
        self._waiting: dict[str, tuple[Target, list[asyncio.Future[Outcome]]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._in_flight: dict[asyncio.Task[None], list[tuple[Target, list[asyncio.Future[Outcome]]]]] = {}
        # What each waiting job asked for and the fence of that job: a batch is sent for many jobs at once, so
        # it checks every job's fence itself (workers/fence.py) rather than the one of the job that flushed.
        self._asked: dict[asyncio.Future[Outcome], tuple[Target, Fence | None]] = {}
        self.batches = 0  # for tests and logs

    async def submit(self, target: Target) -> Outcome:
        """Wait until this SKU holds `target.quantity` in Magento (or is found missing); raises what its
        write raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._asked[future] = (target, CURRENT_FENCE.get())
        future.add_done_callback(self._asked_done)
        key = target.sku.lower()
        entry = self._waiting.get(key)
        if entry is None:
            self._waiting[key] = (target, [future])
        else:
            # The same SKU twice in one batch: the later submission read Cloud Retailer later, so it wins.
            self._waiting[key] = (target, [*entry[1], future])
        if len(self._waiting) >= self.size:
            self._flush(everything=False)
        elif self._timer is None:
            self._timer = loop.call_later(self.wait, self._flush)
        try:
            return await future
        except asyncio.CancelledError:
            self._abandon(key, future)
            raise

    def _asked_done(self, future: asyncio.Future[Outcome]) -> None:
        self._asked.pop(future, None)

    def _abandon(self, key: str, future: asyncio.Future[Outcome]) -> None:
        """A job stopped waiting (its timeout, a shutdown) and arq will run it again, reading Cloud Retailer
        afresh. Its count must not reach Magento later than the retry's: left in a batch still retrying
        behind 429s, it could land after the newer one and stay there. So it leaves a batch not yet sent, and
        a batch in flight that nobody waits for any more is stopped."""
        entry = self._waiting.get(key)
        if entry is not None and future in entry[1]:
            rest = [f for f in entry[1] if f is not future]
            if rest:
                self._waiting[key] = (entry[0], rest)
            else:
                del self._waiting[key]
            return
        for task, batch in list(self._in_flight.items()):
            futures = [f for _, fs in batch for f in fs]
            if future in futures:
                if all(f.done() for f in futures):
                    task.cancel()
                return

    def _flush(self, everything: bool = True) -> None:
        """Send full batches (and, when the wait is over, the rest)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while len(self._waiting) >= self.size or (everything and self._waiting):
            keys = list(self._waiting)[: self.size]
            self._start([self._waiting.pop(k) for k in keys])
        if self._waiting:
            self._timer = asyncio.get_running_loop().call_later(self.wait, self._flush)

    def _start(self, batch: list[tuple[Target, list[asyncio.Future[Outcome]]]]) -> None:
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._in_flight[task] = batch
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)

    async def _send(self, batch: list[tuple[Target, list[asyncio.Future[Outcome]]]]) -> None:
        CURRENT_FENCE.set(None)  # this task's own copy of the context: the fences are checked per job below
        batch = await self._fenced(batch)
        if not batch:
            return
        self.batches += 1
        skus = [target.sku for target, _ in batch]
        try:
            outcomes = await self.apply([target for target, _ in batch])
        except asyncio.CancelledError:
            _resolve(batch, dict.fromkeys(skus, TransientError("the stock write was cancelled")))
            raise
        except Exception as exc:  # handed to every job of the batch, which raises it (retried or dead-lettered)
            outcomes = dict.fromkeys(skus, exc)
        _resolve(batch, outcomes)

    async def _fenced(
        self, batch: list[tuple[Target, list[asyncio.Future[Outcome]]]]
    ) -> list[tuple[Target, list[asyncio.Future[Outcome]]]]:
        """Drop the submissions of jobs that were taken over (they get StaleJob); of the rest, the newest
        submission of each SKU is what is written."""
        asked = [self._asked.get(f) for _, futures in batch for f in futures]
        fences = {a[1] for a in asked if a is not None and a[1] is not None}
        if not fences:
            return batch
        held = dict(zip(fences, await asyncio.gather(*(f.holds() for f in fences)), strict=True))
        kept = []
        for target, futures in batch:
            live = []
            for future in futures:
                asked, fence = self._asked.get(future, (target, None))
                if fence is None or held.get(fence, True):
                    live.append((asked, future))
                elif not future.done():
                    future.set_exception(StaleJob(f"the stock job of SKU {target.sku} was taken over"))
            if live:
                kept.append((live[-1][0], [f for _, f in live]))
        return kept

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        running = list(self._in_flight)
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(BaseException):
                await task


def _resolve(
    batch: list[tuple[Target, list[asyncio.Future[Outcome]]]], outcomes: dict[str, Outcome | BaseException]
) -> None:
    for target, futures in batch:
        result = outcomes.get(target.sku)
        for future in futures:
            if future.done():  # its job was cancelled (timeout, shutdown)
                continue
            if result is None:
                future.set_exception(RuntimeError(f"no outcome for SKU {target.sku!r}"))
            elif isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
