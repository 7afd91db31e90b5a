"""The inventory sync's parts on their own: the write batcher, the quantity rules, SKU lookups, the run lock,
the report's bounds and the reconciliation's comparison."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis

from workers.errors import TransientError
from workers.lease import Lease, LeaseLost
from workers.sync.inventory import reads
from workers.sync.inventory import reconcile as rec
from workers.sync.inventory import stock as st
from workers.sync.inventory.batcher import Batcher
from workers.sync.inventory.reconcile.compare import Comparison, Found, Held
from workers.sync.inventory.reconcile.levels import HeldBack
from workers.sync.inventory.reconcile.report import Throttled
from workers.sync.inventory.reconcile.write import Writer
from workers.sync.inventory.stock import Counts, Outcome, Target


class Recorder:
    def __init__(self, delay: float = 0.0, fail: dict[str, BaseException] | None = None) -> None:
        self.batches: list[list[str]] = []
        self.landed: list[list[tuple[str, float]]] = []  # the writes that came back, with their counts
        self.sent = asyncio.Event()
        self.delay = delay
        self.fail = fail or {}

    async def __call__(self, targets: Sequence[Target]) -> dict[str, Outcome | BaseException]:
        self.batches.append([t.sku for t in targets])
        self.sent.set()
        await asyncio.sleep(self.delay)
        self.landed.append([(t.sku, t.quantity) for t in targets])
        return {t.sku: self.fail.get(t.sku, Outcome.WRITTEN) for t in targets}


async def test_a_full_batch_goes_at_once_and_the_rest_after_the_wait() -> None:
    apply = Recorder()
    batcher = Batcher(apply, size=3, wait_seconds=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    first = await asyncio.gather(*(batcher.submit(Target(f"S{i}", i)) for i in range(3)))
    assert first == [Outcome.WRITTEN] * 3
    assert loop.time() - started < 0.1  # did not wait: the batch was full
    rest = await asyncio.gather(*(batcher.submit(Target(f"T{i}", i)) for i in range(4)))
    assert rest == [Outcome.WRITTEN] * 4
    assert apply.batches == [["S0", "S1", "S2"], ["T0", "T1", "T2"], ["T3"]]
    assert loop.time() - started >= 0.2  # T3 waited for company, then went alone


async def test_one_sku_twice_is_written_once_with_the_later_count() -> None:
    seen: list[list[tuple[str, float]]] = []

    async def apply(targets: Sequence[Target]) -> dict[str, Outcome | BaseException]:
        seen.append([(t.sku, t.quantity) for t in targets])
        return dict.fromkeys((t.sku for t in targets), Outcome.WRITTEN)

    batcher = Batcher(apply, size=10, wait_seconds=0.05)
    results = await asyncio.gather(batcher.submit(Target("A-1", 1)), batcher.submit(Target("a-1", 2)))
    assert results == [Outcome.WRITTEN, Outcome.WRITTEN]
    assert seen == [[("a-1", 2)]]


async def test_each_job_gets_its_own_skus_outcome_or_error() -> None:
    refused = ValueError("quantity refused")
    batcher = Batcher(Recorder(fail={"B": refused}), size=3, wait_seconds=0.01)
    results = await asyncio.gather(
        batcher.submit(Target("A", 1)), batcher.submit(Target("B", 1)), return_exceptions=True
    )
    assert results == [Outcome.WRITTEN, refused]


async def test_a_failed_batch_fails_every_job_in_it() -> None:
    async def down(targets: Sequence[Target]) -> dict[str, Outcome | BaseException]:
        raise TransientError("magento 503")

    batcher = Batcher(down, size=5, wait_seconds=0.01)
    results = await asyncio.gather(*(batcher.submit(Target(s, 1)) for s in "XYZ"), return_exceptions=True)
    assert all(isinstance(r, TransientError) for r in results)


async def test_a_cancelled_job_does_not_break_its_batch() -> None:
    apply = Recorder(delay=0.1)
    batcher = Batcher(apply, size=5, wait_seconds=0.01)
    waiting = asyncio.create_task(batcher.submit(Target("A", 1)))
    other = asyncio.create_task(batcher.submit(Target("B", 1)))
    await apply.sent.wait()
    waiting.cancel()
    assert await other == Outcome.WRITTEN
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert apply.landed == [[("A", 1), ("B", 1)]]  # the other job's write went through, with A's count too
    await batcher.close()


async def test_a_timed_out_job_leaves_its_batch_so_its_old_count_cannot_land_after_the_retrys() -> None:
    """The chaos 429 storm found it: a job timed out while its write retried behind 429s; arq ran the job again,
    which wrote the newer count, and the orphaned write then landed the older one last."""
    apply = Recorder(delay=0.3)
    batcher = Batcher(apply, size=5, wait_seconds=0.05)
    # Not yet sent: the count leaves the batch.
    queued = asyncio.create_task(batcher.submit(Target("A", 75)))
    await asyncio.sleep(0)  # in the batch, which waits for company
    assert not apply.sent.is_set()
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    # In flight with nobody else waiting: the write is stopped.
    flying = asyncio.create_task(batcher.submit(Target("B", 75)))
    await apply.sent.wait()  # sent, still "retrying"
    flying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flying
    await asyncio.sleep(0)  # the cancelled write's done-callbacks
    assert not batcher._in_flight
    # The retried jobs write the newer counts; nothing older follows them.
    assert await batcher.submit(Target("A", 73)) == Outcome.WRITTEN
    assert await batcher.submit(Target("B", 73)) == Outcome.WRITTEN
    assert apply.batches == [["B"], ["A"], ["B"]]
    # The stopped write would have come back well before the two after it (0.3 s against 0.7 s): it never did.
    assert apply.landed == [[("A", 73)], [("B", 73)]]
    await batcher.close()


@pytest.mark.parametrize(
    ("on_hand", "quantity", "status"), [(5, 5, 1), (0, 0, 0), (-3, 0, 0), (2.5, 2.5, 1), (0.0004, 0.0004, 1)]
)
def test_quantity_and_status_from_on_hand(on_hand: float, quantity: float, status: int) -> None:
    assert st.target_quantity(on_hand) == quantity
    assert Target("S", st.target_quantity(on_hand)).status == status


def test_same_stock_compares_quantity_and_status() -> None:
    assert st.same_stock(5.0, 1, 5)
    assert not st.same_stock(5.0, 0, 5)  # in stock by count, marked out of stock by hand
    assert not st.same_stock(4.0, 1, 5)
    assert st.same_stock(0, 0, 0.0)


def test_sku_lookups_are_chunked_and_a_sku_with_a_comma_goes_alone() -> None:
    skus = [f"S{i}" for i in range(250)] + ["A,B", "S1"]
    chunks = reads.sku_chunks(skus)
    assert [len(c) for c in chunks] == [100, 100, 50, 1]
    assert chunks[-1] == ["A,B"]


async def test_the_run_lock_is_held_renewed_and_released(redis: Redis) -> None:
    first, second = Lease(redis, rec.LOCK_KEY, "run-1", 300), Lease(redis, rec.LOCK_KEY, "run-2", 300)
    assert await first.take()
    assert not await second.take()
    assert await second.held_by() == "run-1"
    async with first.kept(0.05, stop_on_loss=True):
        await asyncio.sleep(0.6)  # twice the lease: renewals kept it
        assert await redis.get(rec.LOCK_KEY) == b"run-1"
        await second.release()  # not its lock: nothing happens
        assert await redis.get(rec.LOCK_KEY) == b"run-1"
    assert await redis.get(rec.LOCK_KEY) is None  # released when the run ends
    assert await second.take()


async def test_a_run_that_loses_its_lock_stops(redis: Redis) -> None:
    lock = Lease(redis, rec.LOCK_KEY, "run-1")
    assert await lock.take()
    with pytest.raises(LeaseLost):
        async with lock.kept(0.05, stop_on_loss=True):
            await redis.set(rec.LOCK_KEY, "someone-else")
            await asyncio.sleep(1)
    assert lock.lost


def test_report_lists_are_bounded_but_counts_are_exact() -> None:
    report = rec.Report(dry_run=False, store_id="W-1", source_code="default")
    for i in range(rec.SAMPLE + 10):
        report.missing_in_magento.add(f"S{i}")
    for i in range(30):
        report.error("boom", [f"S{i}"])
    body = report.as_dict()
    assert body["missing_in_magento"]["count"] == rec.SAMPLE + 10
    assert len(body["missing_in_magento"]["skus"]) == rec.SAMPLE
    assert body["error_count"] == 30 and len(body["errors"]) == 20


class FakeSide:
    """A Magento side for the comparison alone: pages of rows, what each row holds, the products."""

    def __init__(self, pages: list[list[str]], held: dict[str, Found], products: dict[str, str]) -> None:
        self._pages, self._held, self._products = pages, held, products

    async def pages(self) -> AsyncIterator[list[dict[str, Any]]]:
        for page in self._pages:
            yield [{"sku": sku} for sku in page]

    async def held(self, rows: list[dict[str, Any]]) -> list[Found]:
        return [self._held[row["sku"]] for row in rows]

    async def products(self, skus: list[str]) -> dict[str, str]:
        return {sku.lower(): self._products[sku] for sku in skus if sku in self._products}


async def test_one_comparison_for_both_inventory_apis() -> None:
    levels: dict[str, Any] = {
        sku.lower(): (sku, quantity)
        for sku, quantity in [("A", 5), ("B", 3), ("C", 0), ("D", 1), ("E", 2), ("F", 4), ("G", 7)]
    }
    side = FakeSide(
        # the last page twice, as Magento repeats it past the end
        [["A", "B", "X"], ["C", "D", "E", "X"], ["C", "D", "E", "X"]],
        {
            "A": Held(5, 1),  # in step
            "B": Held(3, 0, 17),  # right count, marked out of stock by hand
            "C": Held(2, 1),  # drifted
            "D": None,  # deleted since it was listed
            "E": TransientError("magento 500"),  # could not be read
        },
        {"F": "f"},  # F has a product but no row; G has neither
    )
    report = rec.Report(dry_run=False, store_id="W-1", source_code="default")
    comparison = Comparison(report, Throttled(None, report))
    drift = await comparison.run(side, levels)
    assert drift == {"b": Target("B", 3, 17), "c": Target("C", 0), "f": Target("f", 4)}
    assert (report.magento_skus, report.compared) == (6, 4)  # X once; A, B, C and F compared
    assert (report.missing_in_cr.skus, report.missing_in_magento.skus) == (["X"], ["D", "G"])
    assert report.error_count == 1 and report.errors[0] == {"error": "TransientError: magento 500", "skus": ["E"]}
    assert comparison.sample(HeldBack({})) == [
        {"sku": "B", "magento": 3.0, "cloud_retailer": 3, "held": 0, "written": 3},
        {"sku": "C", "magento": 2.0, "cloud_retailer": 0, "held": 0, "written": 0},
        {"sku": "f", "magento": None, "cloud_retailer": 4, "held": 0, "written": 4},
    ]


class RecordingStock:
    """Writes nothing anywhere: records each batch and answers WRITTEN for every SKU."""

    def __init__(self) -> None:
        self.counts = Counts()
        self.batches: list[list[Target]] = []

    async def write(self, batch: list[Target]) -> dict[str, Outcome]:
        self.batches.append(batch)
        return {t.sku: Outcome.WRITTEN for t in batch}


async def test_the_recheck_rewrites_a_sku_whose_held_units_moved_while_it_was_written() -> None:
    """A shipment (MSI) between the ledger's read and the write: the write put the shipped units back on sale;
    the recheck refreshes the ledger and writes the SKU again with them held back."""
    held = HeldBack({"A": 3})
    written = {"a": Target("A", held.target("A", 10)), "b": Target("B", held.target("B", 4)), "c": Target("C", 6)}
    assert (written["a"].quantity, written["b"].quantity) == (7, 4)
    ledger = [{"A": 5, "B": 1}, {"A": 5, "B": 1}]

    async def read_held() -> dict[str, float]:
        return ledger.pop(0)

    stock = RecordingStock()
    report = rec.Report(dry_run=False, store_id="W-1", source_code="default")
    writer = Writer(stock, 20, 2, report, Throttled(None, report))  # type: ignore[arg-type]
    await writer.recheck(None, "W-1", written, "", held, read_held)  # type: ignore[arg-type]
    # The order within a batch does not matter (the SKUs come out of a set).
    assert [sorted(batch, key=lambda t: t.sku) for batch in stock.batches] == [[Target("A", 5), Target("B", 3)]]
    assert (written["a"].quantity, written["b"].quantity, written["c"].quantity) == (5, 3, 6)
    assert report.changed_during_run == 2 and held.shown("a", 5) == (10, 5)
