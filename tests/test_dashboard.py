"""The admin dashboard at /admin/ui in headless Chromium (Debian's chromium, driven by Playwright): sign-in with
the admin token, live numbers from a real gateway, worker and Redis, Replay on a dead letter, and the resync and
reconcile buttons with job progress; then the page at a glance after demo-like data: the top row's states, the
plots, one line per job, dead letters grouped by reason, the search, no markup from data, and a short page.
Plus the HTTP side: the files are public, the data is not.

CRMAGENTO_UPDATE_SCREENSHOT=1 makes the at-a-glance test save docs/dashboard.png (the README shows it).

These tests never skip: without chromium or the playwright package they fail and say what to install."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from crmcore import jobrecords, keys, timeline
from crmcore.clock import iso_ms
from crmcore.events import AcceptedEvent, Source
from crmcore.remotes import MARK_DOWN_LUA, Remote, drain_rank
from gateway.app import create_app
from tests.conftest import make_settings, post_event
from tests.support.gateway_server import GatewayServer
from tests.support.signing import ADMIN_TOKEN, envelope, new_id
from tests.test_openapi import check
from workers.errors import PermanentError
from workers.registry import HandlerContext, Progress, Registry

try:
    from playwright.async_api import Browser, Page, async_playwright, expect
except ImportError:  # reported by the `browser` fixture as a failure, not a skip
    async_playwright = None  # type: ignore[assignment]

CR = Source.CLOUDRETAILER
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WAIT_MS = 15_000  # the page refreshes every 3 s; a few rounds of slack for a busy CI machine
VIEWPORT = {"width": 1280, "height": 900}
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "dashboard.png"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def chromium() -> str:
    if async_playwright is None:
        pytest.fail("the dashboard tests need Playwright's Python package: .venv/bin/pip install -e '.[dev]'")
    if not Path(CHROMIUM).exists():
        pytest.fail("the dashboard tests need headless Chromium: apt-get install -y chromium (Debian's package)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        # Debian's chromium, not a Playwright download (`playwright install` is never run).
        launched = await pw.chromium.launch(executable_path=chromium)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    errors: list[str] = []
    # A script error or a CSP refusal of our own files shows up here; the page must have none.
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    yield page
    await context.close()
    # The browser logs every failed fetch: 401 from the wrong-token sign-in, and 404 for a search that finds
    # nothing or a panel this gateway lacks (the page says so), are the expected ones.
    assert [e for e in errors if "status of 401" not in e and "status of 404" not in e] == []


def _url(gateway: TestClient, path: str = "/admin/ui") -> str:
    return f"http://{gateway.host}:{gateway.port}{path}"


async def _sign_in(page: Page, gateway: TestClient, token: str = ADMIN_TOKEN) -> None:
    await page.goto(_url(gateway))
    await expect(page.locator("#login")).to_be_visible()
    await page.fill("#token", token)
    await page.click("#login-form button[type=submit]")


async def _send(gateway: TestClient, product_id: str) -> str:
    msg_id = new_id()
    body = envelope("product.updated", {"product_id": product_id, "sku": f"SKU-{product_id}"})
    assert (await post_event(gateway, "cloudretailer", body, msg_id=msg_id)).status == 202
    return msg_id


# ----------------------------------------------------------------------------------------------- HTTP


async def test_the_files_are_public_and_the_data_is_not(gateway: TestClient) -> None:
    page = await gateway.get("/admin/ui")
    assert page.status == 200
    html = await check(page, "GET", "/admin/ui")
    assert 'src="ui/dashboard.js"' in html and ADMIN_TOKEN not in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    for name, ctype in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        resp = await gateway.get(f"/admin/ui/{name}")
        assert resp.status == 200 and resp.content_type == ctype
        await check(resp, "GET", "/admin/ui/{asset}")
    missing = await gateway.get("/admin/ui/index.py")
    assert missing.status == 404
    await check(missing, "GET", "/admin/ui/{asset}")

    # Only the dashboard's own paths are public: the API next to it and tricks around the prefix are not.
    for path in (
        "/admin/status",
        "/admin/uix",
        "/admin/ui/../status",
        "/admin/ui/%2e%2e/status",
        "/admin/ui%2f..%2fstatus",
    ):
        resp = await gateway.get(path, allow_redirects=False)
        assert resp.status in (401, 404), path
        assert b'"redis"' not in await resp.read(), path


# ----------------------------------------------------------------------------------------------- browser


async def test_sign_in_live_numbers_and_replay(page: Page, gateway: TestClient, start_worker) -> None:
    broken = {"on": True}
    handled: list[str] = []

    async def handler(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        if broken["on"] and events[-1].data["product_id"] == "P-bad":
            raise PermanentError("attribute set 'Shoes' does not exist in Magento")
        handled.extend(e.id for e in events)

    # A wrong token is refused and not kept.
    await _sign_in(page, gateway, token="not-the-token-0123456789")
    await expect(page.locator("#login-error")).to_have_text("The gateway refused this token.", timeout=WAIT_MS)
    assert await page.evaluate("sessionStorage.length") == 0
    assert await page.locator("#dashboard").is_hidden()

    await page.fill("#token", ADMIN_TOKEN)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#dashboard")).to_be_visible()
    await expect(page.locator("#redis-state")).to_have_text("Redis ok", timeout=WAIT_MS)
    await expect(page.locator("#queue-depth")).to_have_text("0")
    await expect(page.locator("#no-workers")).to_be_visible()

    # Live numbers: events arrive while no worker runs.
    bad = await _send(gateway, "P-bad")
    good = await _send(gateway, "P-good")
    await expect(page.locator("#queue-depth")).to_have_text("2", timeout=WAIT_MS)
    await expect(page.locator("#recent-count")).to_have_text("2")
    bad_row = page.locator(f"#events tbody tr[data-id='{bad}']")
    await expect(bad_row.locator("td.status")).to_have_text("queued")

    registry = Registry()
    registry.register(CR, "product.updated", handler)
    await start_worker(registry)
    await expect(page.locator("#worker-count")).to_have_text("1", timeout=WAIT_MS)
    await expect(page.locator("#workers tbody tr")).to_have_count(1)
    await expect(page.locator("#workers tbody tr td").nth(4)).to_contain_text(" s")
    await expect(bad_row.locator("td.status")).to_have_text("dead", timeout=WAIT_MS)
    good_row = page.locator(f"#events tbody tr[data-id='{good}']")
    await expect(good_row.locator("td.status")).to_have_text("done")
    await expect(page.locator("#queue-depth")).to_have_text("0")
    await expect(page.locator("#dead-letter-count")).to_have_text("1")
    dl_rows = page.locator("#dead-letters tbody tr.dl-group")
    await expect(dl_rows).to_have_count(1)
    await expect(dl_rows.first).to_contain_text("does not exist in Magento")
    await expect(dl_rows.first.locator("td.dl-count")).to_have_text("1")
    await expect(dl_rows.first.locator(f".id[title='{bad}']")).to_have_count(1)

    # Failures only: the dead event stays, the handled one goes.
    await page.check("#failures-only")
    await expect(page.locator("#events tbody tr")).to_have_count(1, timeout=WAIT_MS)
    await expect(bad_row).to_be_visible()
    await page.uncheck("#failures-only")
    await expect(page.locator("#events tbody tr")).to_have_count(2, timeout=WAIT_MS)

    # Replay once the cause is fixed: the dead letter goes and the event is handled.
    broken["on"] = False
    await dl_rows.first.locator("details summary").click()  # one dead letter of the group, by itself
    await dl_rows.first.locator("button.replay").click()
    await expect(page.locator("#action-message")).to_contain_text("replayed: 1 event(s) queued again")
    await expect(dl_rows).to_have_count(0, timeout=WAIT_MS)
    await expect(page.locator("#no-dead-letters")).to_be_visible()
    await expect(bad_row.locator("td.status")).to_have_text("done", timeout=WAIT_MS)
    await expect(page.locator("#dead-letter-count")).to_have_text("0")
    assert handled.count(bad) == 1
    listing = await (await gateway.get("/admin/dead-letters", headers=AUTH)).json()
    assert listing["total"] == 0

    # The token lives in this tab's sessionStorage only, never in the page; a reload keeps the session.
    assert ADMIN_TOKEN not in await page.content()
    await page.reload()
    await expect(page.locator("#dashboard")).to_be_visible()
    await expect(page.locator("#worker-count")).to_have_text("1", timeout=WAIT_MS)
    await page.click("#logout")
    await expect(page.locator("#login")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0


async def test_buttons_start_jobs_and_show_their_progress(
    page: Page, gateway: TestClient, redis: Any, start_worker
) -> None:
    release = asyncio.Event()

    async def reconcile(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
        await progress(done=1, total=3)
        await release.wait()  # held until the test has seen the running job's progress in the page
        missing = [f"SKU-{n}" for n in range(60)]
        report = {
            "compared": 3,
            "drift_found": 1,
            "drift_fixed": 0 if params["dry_run"] else 1,
            "dry_run": params["dry_run"],
            "missing_in_magento": {"count": 60, "skus": missing[:50]},
            "missing_in_cr": {"count": 0, "skus": []},
        }
        await ctx.redis.hset(keys.REPORTS, "reconcile-inventory", orjson.dumps(report))  # as the real job does
        await progress(done=3)
        return report

    async def resync_products(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
        await progress(done=2, total=2)
        return {"updated": 2}

    registry = Registry()
    registry.register_job("reconcile-inventory", reconcile)
    registry.register_job("resync-products", resync_products)
    await start_worker(registry)
    await _sign_in(page, gateway)
    await expect(page.locator("#no-reports")).to_be_visible(timeout=WAIT_MS)

    await page.click("button[data-action=reconcile][data-dry-run=true]")
    await expect(page.locator("#action-message")).to_contain_text("Started job reconcile-inventory-")
    job_row = page.locator("#jobs tbody tr").first
    await expect(job_row.locator("td.status")).to_have_text("running", timeout=WAIT_MS)
    await expect(job_row.locator(".progress-label")).to_have_text("1/3")
    assert await job_row.locator("progress").evaluate("p => [p.value, p.max]") == [1, 3]
    release.set()
    await expect(job_row.locator("td.status")).to_have_text("done", timeout=WAIT_MS)
    await expect(job_row.locator(".progress-label")).to_have_text("3/3")
    summary = "3 compared, drift 1 (dry run, nothing written), 60 missing in Magento"
    await expect(job_row.locator(".summary")).to_have_text(summary)
    await expect(job_row.locator("pre.json")).to_be_hidden()
    report = page.locator("#reports tr.report[data-name='reconcile-inventory']")
    await expect(report.locator(".summary")).to_have_text(summary, timeout=WAIT_MS)

    # A full resync asks for confirmation (accepted by the page fixture's dialog handler).
    await page.click("button[data-action=resync][data-kind=products]")
    await expect(page.locator("#jobs tbody tr")).to_have_count(2, timeout=WAIT_MS)
    resync_row = page.locator("#jobs tbody tr").first
    await expect(resync_row.locator("td.status")).to_have_text("done", timeout=WAIT_MS)
    await expect(resync_row.locator(".progress-label")).to_have_text("2/2")
    await expect(resync_row.locator(".summary")).to_have_text("updated 2, 1 field")

    jobs = (await (await gateway.get("/admin/jobs", headers=AUTH)).json())["items"]
    assert [(j["kind"], j["params"], j["status"]) for j in jobs] == [
        ("resync-products", {}, "done"),
        ("reconcile-inventory", {"dry_run": True}, "done"),
    ]


async def test_remotes_panel_shows_an_outage_and_its_parked_backlog(
    page: Page, gateway: TestClient, redis: Any
) -> None:
    await _sign_in(page, gateway)
    magento = page.locator("#health .remote[data-remote='magento']")
    await expect(magento.locator(".remote-state")).to_have_text("up", timeout=WAIT_MS)
    await expect(magento).to_have_attribute("data-state", "ok")
    await expect(magento.locator(".parked")).to_have_text("parked: none")

    # What a worker records when Magento answers 503, and the entities it parks meanwhile.
    now_ms = int(time.time() * 1000)
    await redis.eval(MARK_DOWN_LUA, 1, keys.remote(Remote.MAGENTO), "unavailable", "magento 503", "", now_ms)
    for i, events in enumerate((2, 1, 1)):
        entity = f"cloudretailer:product:P-{i}"
        await redis.zadd(keys.remote_parked(Remote.MAGENTO), {entity: drain_rank(entity, now_ms)})
        await redis.rpush(keys.pending(entity), *[f"ev-{i}-{n}" for n in range(events)])

    await expect(magento.locator(".remote-state")).to_have_text("unavailable", timeout=WAIT_MS)
    await expect(magento.locator(".remote-state")).to_have_class(re.compile(r"\bwarn\b"))
    await expect(magento.locator(".remote-summary")).to_contain_text("unavailable since")
    await expect(magento.locator(".remote-summary")).to_contain_text("magento 503")
    await expect(magento).to_have_attribute("data-state", "warn")
    await expect(magento.locator(".parked")).to_have_text("parked: 3 entities, 4 event(s)")
    cr = page.locator("#health .remote[data-remote='cloudretailer']")
    await expect(cr.locator(".remote-state")).to_have_text("up")


async def _demo_like(gateway: TestClient, start_worker, broken: dict[str, bool]) -> dict[str, str]:
    """What the demo leaves behind, in small: products synced with their SKUs learnt, two kinds of failure (one
    whose SKU and error text are markup), and a resync and a reconciliation whose results list hundreds of SKUs."""

    async def handler(ctx: HandlerContext, events: list[AcceptedEvent]) -> None:
        data = events[-1].data
        await timeline.remember(ctx.redis, data["sku"], events[-1].entity)
        if broken["on"] and data["product_id"].startswith("P-shoe"):
            # Each reason names its SKU, as the real one does: the group is the cause, not the text.
            raise PermanentError(f"attribute set 'Shoes' (primary set of {data['sku']}) does not exist in Magento")
        if data["sku"] == XSS:
            raise PermanentError(f"Magento refused SKU {XSS}")

    async def resync_products(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
        await progress(done=420, total=420)
        return {"fed": 423, "queued": 420, "not_in_cloud_retailer": [f"GONE-{n}" for n in range(300)]}

    async def reconcile(ctx: HandlerContext, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
        await progress(done=500, total=500)
        drift = [{"sku": f"SKU-{n}", "magento": 1, "cloud_retailer": 2, "held": 0, "written": 2} for n in range(200)]
        report = {
            "compared": 500,
            "drift_found": 200,
            "drift_fixed": 200,
            "drift": drift,
            "dry_run": False,
            "missing_in_magento": {"count": 60, "skus": [f"NEW-{n}" for n in range(50)]},
            "missing_in_cr": {"count": 0, "skus": []},
            "error_count": 0,
            "errors": [],
        }
        await ctx.redis.hset(keys.REPORTS, "reconcile-inventory", orjson.dumps({"status": "ok", **report}))
        return report

    registry = Registry()
    registry.register(CR, "product.updated", handler)
    registry.register_job("resync-products", resync_products)
    registry.register_job("reconcile-inventory", reconcile)
    await start_worker(registry)

    ids: dict[str, str] = {}
    for n in range(30):
        pid = f"P-{n}" if n % 6 else f"P-shoe-{n}"
        msg_id = new_id()
        body = envelope("product.updated", {"product_id": pid, "sku": f"SKU-{pid}"})
        assert (await post_event(gateway, "cloudretailer", body, msg_id=msg_id)).status == 202
        ids[pid] = msg_id
    body = envelope("product.updated", {"product_id": "P-xss", "sku": XSS})
    ids["xss"] = new_id()
    assert (await post_event(gateway, "cloudretailer", body, msg_id=ids["xss"])).status == 202
    for path in ("/admin/resync/products", "/admin/reconcile/inventory"):
        assert (await gateway.post(path, headers=AUTH)).status == 202
    return ids


async def test_the_page_reads_at_a_glance(page: Page, gateway: TestClient, redis: Any, start_worker) -> None:
    broken = {"on": True}
    ids = await _demo_like(gateway, start_worker, broken)

    async def settled() -> bool:
        listing = await (await gateway.get("/admin/dead-letters", headers=AUTH)).json()
        jobs = (await (await gateway.get("/admin/jobs", headers=AUTH)).json())["items"]
        return listing["total"] == 6 and all(j["status"] == "done" for j in jobs)

    deadline = time.monotonic() + WAIT_MS / 1000
    while not await settled():
        assert time.monotonic() < deadline, "the demo-like data did not settle"
        await asyncio.sleep(0.1)

    # An initial sync half-way: its phases as the workers record them (crmcore/jobrecords.py).
    initial = jobrecords.new_job_id(jobrecords.AdminJobKind.INITIAL_SYNC)
    await jobrecords.create(redis, initial, jobrecords.AdminJobKind.INITIAL_SYNC, {})
    await jobrecords.open_phases(redis, initial, ["categories", "products", "customers", "inventory", "orders"])
    await jobrecords.update(redis, jobrecords.phase_id(initial, "categories"), status="done", done=12, total=12)
    await jobrecords.update(redis, initial, status="running", phase="products", done=1, total=5)

    await _sign_in(page, gateway)
    await expect(page.locator("#redis-state")).to_have_text("Redis ok", timeout=WAIT_MS)

    # Top row: each remote's state and the figures, with the state in words as well as colour.
    magento = page.locator("#health .remote[data-remote='magento']")
    await expect(magento.locator(".remote-state")).to_have_text("up", timeout=WAIT_MS)
    await expect(page.locator("#worker-tile")).to_have_attribute("data-state", "ok")
    await expect(page.locator("#worker-note")).to_have_text("heartbeats fresh")
    await expect(page.locator("#dead-letter-count")).to_have_text("6")
    await expect(page.locator("#dead-tile")).to_have_attribute("data-state", "warn")
    domains = page.locator("#domains tbody tr")
    await expect(domains).to_have_count(5)
    products = page.locator("#domains tr[data-domain='products']")
    await expect(products.locator(".domain-state")).to_have_text("some failing")
    await expect(products.locator("td.age")).to_contain_text("ago")
    await expect(page.locator("#domains tr[data-domain='orders'] .domain-state")).to_have_text("quiet")

    # Plots: one SVG per measure, with the minutes that had something drawn as a line.
    charts = page.locator("#plots figure.plot")
    await expect(charts).to_have_count(5, timeout=WAIT_MS)
    received = page.locator("#plots figure[data-chart='received']")
    assert int(await received.locator("svg").get_attribute("data-points") or 0) >= 1
    await expect(received.locator("svg path.line")).to_have_count(1)
    await expect(received.locator(".chart-total")).to_have_text("Σ 31")
    await expect(page.locator("#plots figure[data-chart='lag'] svg path.line")).to_have_count(2)
    await page.click("button.window[data-window='day']")
    await expect(page.locator("#plot-window-label")).to_have_text("day")
    await expect(page.locator("button.window[data-window='day']")).to_have_attribute("aria-pressed", "true")
    await expect(page.locator("#plots svg.chart").first).to_have_attribute("aria-label", re.compile("day"))
    await page.click("button.window[data-window='hour']")
    await expect(page.locator("#plot-window-label")).to_have_text("hour")

    # Admin jobs: one line each, the result behind details.
    resync = page.locator("#jobs tbody tr[data-kind='resync-products']")
    await expect(resync.locator(".summary")).to_have_text("420 queued of 423, 300 unknown", timeout=WAIT_MS)
    job_id = await resync.get_attribute("data-id")
    assert job_id and await resync.locator(".id").get_attribute("title") == job_id
    assert (await resync.locator(".id").inner_text()).startswith("…")
    reconcile = page.locator("#jobs tbody tr[data-kind='reconcile-inventory']")
    fixed = "500 compared, drift 200, 200 fixed, 60 missing in Magento"
    await expect(reconcile.locator(".summary")).to_have_text(fixed)
    await expect(resync.locator("pre.json")).to_be_hidden()
    phased = page.locator(f"#jobs tbody tr[data-id='{initial}']")
    await expect(phased.locator("td.status")).to_have_text("running")
    await expect(phased.locator(".phase")).to_have_text("phase products (1/5)")
    for row in (resync, reconcile, phased):  # one line high, however long the result
        assert (await row.bounding_box() or {"height": 999})["height"] < 80
    report = page.locator("#reports tr.report[data-name='reconcile-inventory']")
    await expect(report.locator(".pill")).to_have_text("ok")
    await expect(report.locator("pre.json")).to_be_hidden()

    # Short: the whole page fits in a couple of screens at 1280 wide.
    height = await page.evaluate("document.documentElement.scrollHeight")
    assert height < 2500, height
    if os.environ.get("CRMAGENTO_UPDATE_SCREENSHOT"):
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=str(SCREENSHOT))

    await resync.locator("details summary").click()
    await expect(resync.locator("pre.json")).to_be_visible()
    await expect(resync.locator("pre.json")).to_contain_text("GONE-299")
    await page.wait_for_timeout(3500)  # a refresh redraws the table: what the operator opened stays open
    await expect(resync.locator("pre.json")).to_be_visible()

    # Dead letters grouped by reason, the markup one shown as text.
    groups = page.locator("#dead-letters tbody tr.dl-group")
    await expect(groups).to_have_count(2)
    shoes = groups.filter(has_text="attribute set 'Shoes'")
    await expect(shoes.locator("td.dl-count")).to_have_text("5")
    xss_group = groups.filter(has_text=XSS)
    await expect(xss_group.locator("td.dl-count")).to_have_text("1")
    await expect(xss_group.locator(".reason .error")).to_have_text(f"Magento refused SKU {XSS}")
    await expect(shoes.locator(".reason .error")).to_have_text(
        "attribute set 'Shoes' (primary set of …) does not exist in Magento"
    )

    # Replay this group, once the cause is fixed: that group goes, the other stays.
    broken["on"] = False
    await shoes.locator("button.replay-group").click()
    await expect(page.locator("#action-message")).to_contain_text("Replayed 5 dead letters (5 event(s) queued again)")
    await expect(groups).to_have_count(1, timeout=WAIT_MS)
    await expect(page.locator("#dead-letter-count")).to_have_text("1", timeout=WAIT_MS)
    listing = await (await gateway.get("/admin/dead-letters", headers=AUTH)).json()
    assert [dl["reason"] for dl in listing["items"]] == [f"Magento refused SKU {XSS}"]

    # Search: a SKU gives its entity's timeline, an event id too; the markup SKU is found and shown as text.
    await page.fill("#search", "sku-p-3")
    await page.press("#search", "Enter")
    match = page.locator("#trace .match")
    await expect(match).to_have_count(1, timeout=WAIT_MS)
    await expect(match.locator(".entity")).to_have_text("cloudretailer:product:P-3")
    await expect(match.locator("tr.step td.status").first).to_have_text("done")
    await expect(match.locator("tr.step td.status", has_text="received")).to_have_count(1)
    await page.fill("#search", XSS)
    await page.press("#search", "Enter")
    await expect(match.locator(".entity")).to_have_text("cloudretailer:product:P-xss", timeout=WAIT_MS)
    await expect(match).to_contain_text(f"also known as {XSS}")
    await expect(match.locator("td.error").first).to_have_text(f"Magento refused SKU {XSS}")
    await page.fill("#search", ids["P-1"])
    await page.press("#search", "Enter")
    await expect(match.locator(".entity")).to_have_text("cloudretailer:product:P-1", timeout=WAIT_MS)
    await page.fill("#search", "no-such-thing-anywhere")
    await page.press("#search", "Enter")
    await expect(page.locator("#search-message")).to_contain_text("Nothing kept in the event log", timeout=WAIT_MS)
    await expect(match).to_have_count(0)

    # No markup from the data became an element: the only images are none, no handler attribute anywhere.
    assert await page.locator("#dashboard img").count() == 0
    assert await page.evaluate("document.querySelectorAll('[onerror]').length") == 0


async def test_panels_say_not_available_on_a_gateway_without_them(page: Page, gateway: TestClient) -> None:
    """An older gateway (no series, no trace, no per-domain figures): the panels say so and the rest works."""

    async def gone(route: Any) -> None:
        await route.fulfill(status=404, content_type="application/problem+json", body='{"title": "Not Found"}')

    await page.route(re.compile(r"/admin/(series|trace)\b"), gone)
    await _sign_in(page, gateway)
    await expect(page.locator("#redis-state")).to_have_text("Redis ok", timeout=WAIT_MS)
    await expect(page.locator("#plots-missing")).to_be_visible()
    await expect(page.locator("#plots svg")).to_have_count(0)
    await page.fill("#search", "SKU-1")
    await page.press("#search", "Enter")
    await expect(page.locator("#search-message")).to_contain_text("Search: not available on this gateway")


async def test_the_stock_links_table_shows_each_link_with_its_last_reconciliation(
    page: Page, redis_url: str, redis: Any
) -> None:
    lines = [
        {"store_id": "W-1", "source_code": "default", "drift_found": 0, "drift_fixed": 0, "held_skus": 0},
        {"store_id": "S-1", "source_code": "main_street", "drift_found": 3, "drift_fixed": 3, "held_skus": 1},
    ]
    report = {"status": "ok", "finished": iso_ms(time.time() * 1000), "drift_found": 3, "links": lines}
    await redis.hset(keys.REPORTS, "reconcile-inventory", orjson.dumps(report))  # as the real job writes it
    gateway = TestClient(GatewayServer(create_app(make_settings(redis_url, stock_links="W-1:default,S-1:main_street"))))
    await gateway.start_server()
    try:
        await _sign_in(page, gateway)
        shop = page.locator("#stock-links tr.stock-link[data-source='main_street']")
        await expect(shop.locator("td.drift")).to_have_text("3", timeout=WAIT_MS)
        await expect(shop.locator("td.written")).to_have_text("3")
        await expect(shop.locator("td.held")).to_have_text("1")
        web = page.locator("#stock-links tr.stock-link[data-source='default']")
        await expect(web.locator("td.id").first).to_have_text("W-1 (default)")
        await expect(web.locator("td.drift")).to_have_text("0")
        await expect(page.locator("#no-stock-links")).to_be_hidden()
    finally:
        await gateway.close()
