"""Every Redis key of the product, built here and nowhere else (arq's own keys keep arq's names).

The map (key, type, what writes and reads it, lifetime) is in docs/design.md, "Redis key map". The Lua
scripts get their prefixes from `LUA` below, so a key's spelling exists once. tests/test_layout.py forbids the
prefix as a literal anywhere else.
"""

from __future__ import annotations

PREFIX = "crm:"

# For the Lua scripts: `'%(event)s' .. ref` and so on (see entityqueue.py).
LUA = {
    "prefix": PREFIX,
    "event": f"{PREFIX}event:",
    "entity": f"{PREFIX}entity:",
    "worker": f"{PREFIX}worker:",
    "deadletter": f"{PREFIX}deadletter:",
    "recent": f"{PREFIX}events:recent",
    "jobseq": f"{PREFIX}jobseq",
    "deadletters": f"{PREFIX}deadletters",
}

# --- the queue contract: events, entities, jobs (crmcore/entityqueue.py, eventlog.py) -------------------------
RECENT_EVENTS = LUA["recent"]  # zset ref -> received ms, trimmed: the bounded recent index
JOB_SEQ = LUA["jobseq"]  # counter: the n of job ids `crm:{entity}:{n}`
JOB_STATS = f"{PREFIX}stats:jobs"  # hash outcome -> count, across all workers
REPORTS = f"{PREFIX}reports"  # hash name -> JSON of the last report of a periodic or admin run


def event(ref: str) -> str:
    """hash: an event's record; its existence is also the de-duplication window. `ref` is `{source}:{id}`."""
    return f"{LUA['event']}{ref}"


def entity(name: str) -> str:
    """hash: the entity's queue state (state, job, attempts, worker, remote)."""
    return f"{LUA['entity']}{name}"


def pending(name: str) -> str:
    """list: event refs that arrived since the entity's last claim."""
    return f"{LUA['entity']}{name}:pending"


def inflight(name: str) -> str:
    """list: event refs the entity's current job is working on."""
    return f"{LUA['entity']}{name}:inflight"


def entity_pattern() -> str:
    """SCAN match of every entity hash (with `_type="hash"`, which leaves out the lists)."""
    return f"{LUA['entity']}*"


def job_id(name: str, n: int) -> str:
    """An entity job's arq id (minted in Lua the same way)."""
    return f"{PREFIX}{name}:{n}"


# --- dead letters (crmcore/deadletters.py) ------------------------------------------------------------------
DEADLETTERS = LUA["deadletters"]  # zset id -> failed ms


def deadletter(dl_id: str) -> str:
    return f"{LUA['deadletter']}{dl_id}"


# --- workers (workers/heartbeat.py, workers/availability/takeover.py) -----------------------------------------
WORKERS = f"{PREFIX}workers"  # zset worker id -> last heartbeat (epoch s)


def worker(worker_id: str) -> str:
    """hash: host, pid, started, jobs_running."""
    return f"{LUA['worker']}{worker_id}"


def worker_jobs(worker_id: str) -> str:
    """hash entity -> job: what the worker is running, for a takeover if it dies."""
    return f"{LUA['worker']}{worker_id}:jobs"


# --- admin jobs (crmcore/jobrecords.py) ---------------------------------------------------------------------
ADMIN_JOBS = f"{PREFIX}adminjobs"  # zset job id -> created (epoch s)


def admin_job(job_id: str) -> str:
    return f"{PREFIX}adminjob:{job_id}"


# --- remotes (crmcore/remotes.py) ---------------------------------------------------------------------------
def remote(name: str) -> str:
    return f"{PREFIX}remote:{name}"


def remote_parked(name: str) -> str:
    return f"{PREFIX}remote:{name}:parked"


# --- leases and locks: one run or one creator at a time (workers/lease.py) ----------------------------------
def lock(name: str) -> str:
    return f"{PREFIX}lock:{name}"


def remote_probe_lock(name: str) -> str:
    return lock(f"remote-probe:{name}")


def remote_drain_lock(name: str) -> str:
    return lock(f"remote-drain:{name}")


CATCHUP_LOCK = lock("catchup")
RECONCILE_LOCK = lock("reconcile-inventory")
ORDER_POLL_LOCK = lock("order-poll")


def category_lock(name: str) -> str:
    return lock(f"category:{name}")


def schedule(name: str) -> str:
    """hash: a periodic job's schedule (workers/periodic/scheduler.py): due, and the run claimed with its tries."""
    return f"{PREFIX}schedule:{name}"


# --- sync state ---------------------------------------------------------------------------------------------
def binding(kind: str, side: str) -> str:
    """hash: Cloud Retailer id -> Magento id (`side` "cr") or back ("mg") for one kind of record."""
    return f"{PREFIX}bind:{kind}:{side}"


def fingerprints(kind: str) -> str:
    """hash: record -> fingerprint of the payload last written to Magento (a no-op resync writes nothing)."""
    return f"{PREFIX}fp:{kind}"


def applied(kind: str) -> str:
    """hash: record -> the Cloud Retailer version already applied (catch-up skips it)."""
    return f"{PREFIX}applied:{kind}"


def order_marker(increment_id: str) -> str:
    """hash: an order's import state (imported with its sale id, or failed with the reason)."""
    return f"{PREFIX}order:{increment_id}"


ORDER_POLL_CURSOR = f"{PREFIX}orders:poll:cursor"
CATCHUP_CURSORS = f"{PREFIX}catchup:cursors"  # hash stream -> cursor
MANAGED_ADDRESSES = f"{PREFIX}customers:managed-addresses"
RECONCILE_RUNS = f"{PREFIX}reconcile-inventory:runs"  # zset run id -> started (epoch s), the newest runs
RECONCILE_RUN_ENTRIES = f"{RECONCILE_RUNS}:entries"  # hash run id -> JSON report


# --- units held back from Magento's stock (workers/sync/orders/ledger.py) -----------------------------------
HELD_ORDERS = f"{PREFIX}held:orders"  # hash Magento order id -> JSON: its increment id and the units it holds
HELD_UNITS = f"{PREFIX}held:units"  # hash JSON [place, sku] -> the units all orders hold there
HELD_CURSOR = f"{PREFIX}held:cursor"  # string: Magento time of the newest order change the ledger has applied
