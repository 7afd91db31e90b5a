"""After a scenario: let the system settle, then check the four promises of the sync and collect the counts.

1. Magento equals Cloud Retailer for every SKU (name, price, status, weight, on-hand and stock status).
2. Every completed Magento order is exactly one Cloud Retailer sale (and no sale lacks its order).
3. No accepted event is missing from the event log: every webhook-id the gateway acknowledged has a record
   (GET /admin/events/{id}) in a terminal state.
4. Nothing is stuck: queue empty, no entity with waiting or in-flight events, no job leased, no event queued,
   processing or failed, no dead letter.

Counts come from the gateway (`/metrics`, `/admin/status`, the event log) and the relay (what went over the
wire); `coalesced` and the settle checks also read the run's own private Redis (job sequence, entity keys).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from crmcore import keys
from sandbox.catalog import LINKED_STORE_ID
from tests.chaos.stack import CR_API_KEY, MAGENTO_TOKEN, ChaosStack
from tests.chaos.stream import Stream
from tests.support.signing import ADMIN_TOKEN, CR_SECRET, MAGENTO_SECRET
from workers.sync.catchup import run as catchup_run
from workers.sync.inventory import reconcile
from workers.sync.orders import poll

TERMINAL = ("done", "skipped")
# The reports the fallbacks write to GET /admin/status when they run.
FALLBACK_REPORTS = (reconcile.REPORT_NAME, poll.REPORT, catchup_run.REPORT)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Verdict:
    checks: list[Check] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, problems: list[str], fine: str = "") -> None:
        shown = "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
        self.checks.append(Check(name, not problems, shown if problems else fine))


@dataclass
class Baseline:
    """The counters after the warm-up (category tree synced): the scenario's counts are what came after."""

    webhooks: dict[str, float] = field(default_factory=dict)
    jobs: dict[str, float] = field(default_factory=dict)
    minted: int = 0
    received: int = 0
    posts: int = 0
    acknowledged: frozenset[str] = frozenset()


async def baseline(stack: ChaosStack) -> Baseline:
    assert stack.relay is not None
    metrics = await stack.metrics()
    return Baseline(
        webhooks=metrics["webhooks"],
        jobs=metrics["jobs"],
        minted=int(await stack.kv.get(keys.JOB_SEQ) or 0),
        received=stack.relay.stats.received,
        posts=stack.relay.stats.posts,
        acknowledged=frozenset(stack.relay.acknowledged),
    )


# --- settling ---------------------------------------------------------------------------------------------


async def busy(stack: ChaosStack) -> list[str]:
    """What is still moving; empty when the system is at rest."""
    assert stack.relay is not None
    left: list[str] = []
    if not stack.relay.idle():
        left.append("relay still delivering")
    status, snap = await stack.admin("GET", "/admin/status")
    if status != 200:
        return [f"/admin/status answered {status}"]
    if snap["queue_depth"]:
        left.append(f"queue depth {snap['queue_depth']}")
    entities = [k async for k in stack.kv.scan_iter(match=keys.entity_pattern(), count=1000)]
    if entities:
        left.append(f"{len(entities)} entity keys")
    leased = await stack.leased_jobs()
    if leased:
        left.append(f"{len(leased)} jobs leased")
    return left


async def settle(stack: ChaosStack, within: float) -> tuple[float, list[str]]:
    """Wait until nothing moves. Returns (seconds it took, what was still moving at the deadline)."""
    started = time.monotonic()
    assert stack.relay is not None
    await stack.drain_senders()
    await stack.relay.wait_idle(within)
    quiet_since: float | None = None
    while True:
        left = await busy(stack)
        now = time.monotonic()
        if not left:
            # At rest twice in a row, half a second apart: a release that mints a new job is not missed.
            if quiet_since is not None and now - quiet_since >= 0.5:
                return now - started, []
            quiet_since = quiet_since or now
        else:
            quiet_since = None
        if now - started > within:
            return now - started, left
        await asyncio.sleep(0.25)


# --- reading both systems ---------------------------------------------------------------------------------


async def _cr_pages(stack: ChaosStack, path: str, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    headers = {"Authorization": f"Bearer {CR_API_KEY}"}
    while True:
        query = {"limit": "1000", **params, **({"cursor": cursor} if cursor else {})}
        async with stack.http.get(f"{stack.cr_url}{path}", params=query, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            page = await resp.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def _magento_pages(stack: ChaosStack, path: str, store: str = "all") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {MAGENTO_TOKEN}"}
    page = 1
    while True:
        query = {"searchCriteria[pageSize]": "500", "searchCriteria[currentPage]": str(page)}
        async with stack.http.get(f"{stack.magento_url}/rest/{store}/V1/{path}", params=query, headers=headers) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
        items += body["items"]
        # Magento answers a page past the end with the last page again: stop on total_count.
        if len(items) >= body["total_count"] or not body["items"]:
            return items[: body["total_count"]]
        page += 1


def _num(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


async def catalog_differences(stack: ChaosStack) -> list[str]:
    cr_products = {p["sku"]: p for p in await _cr_pages(stack, "/products")}
    cr_stock = {row["sku"]: row for row in await _cr_pages(stack, "/inventory", store_id=LINKED_STORE_ID)}
    m_products = {p["sku"]: p for p in await _magento_pages(stack, "products")}
    m_stock = {
        i["sku"]: i for i in await _magento_pages(stack, "inventory/source-items") if i["source_code"] == "default"
    }
    out: list[str] = []
    for sku, cr in sorted(cr_products.items()):
        m = m_products.get(sku)
        if m is None:
            out.append(f"{sku}: not in Magento")
            continue
        want = {
            "name": cr["name"],
            "price": _num(cr["price"]),
            "status": 1 if cr["web_active"] and not cr["deleted"] else 2,
            "weight": _num(cr.get("weight")),
        }
        have = {"name": m.get("name"), "price": _num(m.get("price")), "status": m.get("status"), "weight": None}
        have["weight"] = _num(m.get("weight"))
        for key, value in want.items():
            if have[key] != value:
                out.append(f"{sku}.{key}: Magento {have[key]!r}, Cloud Retailer {value!r}")
        on_hand = float(cr_stock[sku]["on_hand"])
        # The sync rule: a sale can take Cloud Retailer's count below zero, and Magento then holds 0.
        wanted = max(on_hand, 0.0)
        item = m_stock.get(sku)
        if item is None:
            out.append(f"{sku}: no Magento source item")
            continue
        if (float(item["quantity"]), int(item["status"])) != (wanted, int(wanted > 0)):
            out.append(f"{sku}.qty: Magento {item['quantity']} (status {item['status']}), Cloud Retailer {on_hand}")
    return out


async def sales_problems(stack: ChaosStack) -> tuple[list[str], int, int]:
    """Returns (problems, completed orders, sales)."""
    orders = await _magento_pages(stack, "orders", store="default")
    sales = await _cr_pages(stack, "/sales")
    by_ref: dict[str, int] = {}
    for sale in sales:
        by_ref[sale.get("external_ref") or ""] = by_ref.get(sale.get("external_ref") or "", 0) + 1
    out: list[str] = []
    refs = set()
    for order in orders:
        ref = f"magento:{order['increment_id']}"
        refs.add(ref)
        n = by_ref.get(ref, 0)
        if order["state"] != "complete":
            out.append(f"order {order['increment_id']} is {order['state']!r}, not complete")
        elif n != 1:
            out.append(f"order {order['increment_id']}: {n} sales")
    out += [f"sale {ref!r} has no Magento order" for ref in by_ref if ref not in refs]
    async with stack.http.get(
        f"{stack.cr_url}/stores/{LINKED_STORE_ID}/sales-totals", headers={"Authorization": f"Bearer {CR_API_KEY}"}
    ) as resp:
        totals = await resp.json()
    if totals["sales_count"] != len(sales):
        out.append(f"sales totals count {totals['sales_count']} sales, the listing {len(sales)}")
    return out, sum(o["state"] == "complete" for o in orders), len(sales)


async def event_records(stack: ChaosStack, refs: set[str]) -> dict[str, dict[str, Any] | None]:
    """GET /admin/events/{id}?source= for every ref, 32 at a time."""
    limit = asyncio.Semaphore(32)

    async def one(ref: str) -> tuple[str, dict[str, Any] | None]:
        source, _, msg_id = ref.partition(":")
        async with limit:
            status, body = await stack.admin("GET", f"/admin/events/{msg_id}", params={"source": source})
        return ref, body if status == 200 else None

    return dict(await asyncio.gather(*(one(r) for r in sorted(refs))))


def leaked_secrets(stack: ChaosStack) -> list[str]:
    """Every credential of the run, looked for in every process log (faults make the error paths log a lot)."""
    secrets = {
        "Cloud Retailer webhook secret": CR_SECRET.removeprefix("whsec_"),
        "Magento webhook secret": MAGENTO_SECRET.removeprefix("whsec_"),
        "admin token": ADMIN_TOKEN,
        "Cloud Retailer API key": CR_API_KEY,
        "Magento token": MAGENTO_TOKEN,
    }
    found = []
    for log in sorted(stack.run_dir.glob("*.log")):
        text = log.read_text(errors="replace")
        found += [f"{what} in {log.name}" for what, value in secrets.items() if value in text]
    return found


# --- the verdict ------------------------------------------------------------------------------------------


async def verify(stack: ChaosStack, stream: Stream, base: Baseline, *, converge_within: float = 10.0) -> Verdict:
    assert stack.relay is not None
    v = Verdict()

    # 1. Every SKU equal. Polled briefly: the system is settled, so a difference that stays is a lost update.
    deadline = time.monotonic() + converge_within
    while True:
        diffs = await catalog_differences(stack)
        if not diffs or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    v.add("Magento equals Cloud Retailer for every SKU", diffs, f"{stack.products} SKUs equal")

    # 2. Exactly one sale per completed order.
    problems, completed, sales = await sales_problems(stack)
    v.add("every completed order is exactly one sale", problems, f"{completed} orders, {sales} sales")

    # 3. Every acknowledged webhook is in the event log, terminal.
    records = await event_records(stack, stack.relay.acknowledged)
    missing = [ref for ref, rec in records.items() if rec is None]
    open_ = [f"{ref} is {rec['status']}" for ref, rec in records.items() if rec and rec["status"] not in TERMINAL]
    wire = [f"relay gave up on {ref}" for ref in stack.relay.stats.gave_up]
    wire += [f"gateway refused {r}" for r in stack.relay.stats.refused]
    v.add(
        "no accepted event is missing from the event log",
        [f"{ref} missing" for ref in missing] + open_ + wire,
        f"{len(records)} acknowledged webhook-ids, all done or skipped",
    )

    # 4. Nothing stuck, nothing dead.
    stuck = await busy(stack)
    _, snap = await stack.admin("GET", "/admin/status")
    for state in ("queued", "processing", "failed"):
        _, listed = await stack.admin("GET", "/admin/events", params={"status": state, "limit": "500"})
        if listed["items"]:
            stuck.append(f"{len(listed['items'])} events {state}")
    stuck += [f"worker {w['id']} still runs {w['jobs_running']} jobs" for w in snap["workers"] if w["age_seconds"] < 5
              and w["jobs_running"]]  # fmt: skip
    v.add("nothing is stuck", stuck, "queue empty, no entity pending, no job leased")
    _, dead = await stack.admin("GET", "/admin/dead-letters")
    v.add("no dead letters", [f"{d['entity']}: {d['reason']}" for d in dead["items"]], "0")

    ran = [name for name in FALLBACK_REPORTS if name in snap.get("reports", {})]
    v.add("converged by webhooks alone (no reconciliation, poll or catch-up ran)", ran, "none ran")
    v.add("the stream met no unexpected answer", stream.stats.errors, "none")
    logs = sorted(p.name for p in stack.run_dir.glob("*.log"))
    v.add("no secret in any process log", leaked_secrets(stack), f"{len(logs)} logs: {', '.join(logs)}")

    v.counts = await counts(stack, stream, base, records, snap)
    return v


async def counts(
    stack: ChaosStack,
    stream: Stream,
    base: Baseline,
    records: dict[str, dict[str, Any] | None],
    snap: dict[str, Any],
) -> dict[str, Any]:
    assert stack.relay is not None
    metrics = await stack.metrics()

    def since(now: dict[str, float], before: dict[str, float], key: str) -> int:
        return int(now.get(key, 0) - before.get(key, 0))

    hooks, jobs = metrics["webhooks"], metrics["jobs"]
    accepted = since(hooks, base.webhooks, "queued")
    minted = int(await stack.kv.get(keys.JOB_SEQ) or 0) - base.minted
    relay = stack.relay.stats
    settled = sum(since(jobs, base.jobs, k) for k in ("done", "skipped", "dead"))
    ours = {ref: r for ref, r in records.items() if ref not in base.acknowledged}
    from_webhooks = sum(1 for r in ours.values() if r and r["status"] in (*TERMINAL, "dead"))
    # Changes the workers queued themselves (a product's first write queues its on-hand push): they go through
    # the same queue, so they count in `applied` and in the jobs run.
    follow_ups = max(0, settled - from_webhooks)
    return {
        "sent": relay.received - base.received,
        "deliveries": relay.posts - base.posts,
        "accepted": accepted,
        "duplicates": since(hooks, base.webhooks, "duplicate"),
        # Events that joined a job already waiting for their entity instead of getting a run of their own.
        "coalesced": max(0, accepted + follow_ups - minted),
        "refused_503": since(hooks, base.webhooks, "unavailable"),
        "applied": since(jobs, base.jobs, "done"),
        "skipped": since(jobs, base.jobs, "skipped"),
        "follow_ups": follow_ups,
        "retried": since(jobs, base.jobs, "failed"),
        "events_retried": sum(1 for r in ours.values() if r and r["attempts"] > 1),
        "dead_lettered": since(jobs, base.jobs, "dead"),
        "dead_letters_open": snap.get("dead_letters", 0),
        "entity_jobs": minted,
        "by_type": dict(relay.by_type),
        "stream": {
            "done": dict(stream.stats.done),
            "refused": dict(stream.stats.refused),
            "orders_placed": stream.stats.orders_placed,
            "orders_completed": stream.stats.orders_completed,
            "calls_retried": stream.stats.retried_calls,
        },
    }
