"""Every Redis key of the product, built here and nowhere else (arq's own keys keep arq's names).

The map (key, type, what writes and reads it, lifetime) is in docs/design.md, "Redis key map". The Lua
scripts get their prefixes from `LUA` below, so a key's spelling exists once. tests/test_layout.py forbids the
prefix as a literal anywhere else.

Entity names and why an id can never name another key
-----------------------------------------------------
An entity name is `{source}:{kind}:{id}[:{id}...]` (`entity_name`), and its keys are `crm:entity:{name}`,
`...:pending` and `...:inflight`. The ids come from outside (a webhook's data), so each one is
percent-encoded (`encode_id`): every character but RFC 3986's unreserved ones (`A-Za-z0-9-._~`) becomes
`%XX` of its UTF-8 bytes, `:` and `%` included. Ids of the usual shape (`P-2`, `CR-000005`, `W-1`, digits)
are their own encoding, so the names, keys and jobs already in Redis keep meaning the same entity.

Then no id can name another entity's key:
- `:` appears in a name only as a separator: the source and the kind are fixed words without one
  (tests/test_hostile_ids.py checks the catalogue), and an encoded id has none.
- A kind has a fixed number of ids (a product one, an inventory entry two: store and SKU), so a name of a
  given source and kind always has the same number of parts. `crm:entity:{a}` equal to `crm:entity:{b}:pending`
  would need `a` to be `b` plus one more part of the same source and kind: impossible. The same holds for
  `:inflight`, and for two ids of one name (`W-1`/`A:B` and `W-1:A`/`B` are `W-1:A%3AB` and `W-1%3AA:B`).
- The encoding is injective (`%` itself is encoded), so two different ids never share a spelling, and
  `entity_parts` gives back exactly the ids a name was built from.
A job id `crm:{name}:{n}` lives under arq's `arq:job:` prefix and starts with a source, which no other key
under `crm:` does.

The other keys that take a value from outside need no encoding, because nothing but their own kind lives
under their prefix: `event(ref)` (the webhook id, 1 to 256 printable characters, checked with the signature)
only ever names an event record under `crm:event:{source}:`; `order_marker(increment_id)` only an order marker
under `crm:order:` (the poll cursor is `crm:orders:...`); `category_lock` only a category lock under
`crm:lock:category:{cr|mg}:`. An id with `:` there is just another record of the same kind, never a key of
another type. The ids themselves are printable and bounded (crmcore/events.py), refused at the edge otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import quote, unquote

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
    "series": f"{PREFIX}series:",
}

# --- the queue contract: events, entities, jobs (crmcore/entityqueue.py, eventlog.py) -------------------------
RECENT_EVENTS = LUA["recent"]  # zset ref -> received ms, trimmed: the bounded recent index
JOB_SEQ = LUA["jobseq"]  # counter: the n of job ids `crm:{entity}:{n}`
JOB_STATS = f"{PREFIX}stats:jobs"  # hash outcome -> count, across all workers
REPORTS = f"{PREFIX}reports"  # hash name -> JSON of the last report of a periodic or admin run


# --- the per-minute series (crmcore/series.py) ------------------------------------------------------------
NEWEST_APPLIED = f"{PREFIX}stats:newest-applied"  # zset domain -> ms of the newest change applied there


def series_minute(minute: int) -> str:
    """hash: what one minute (epoch minutes) counted; expires a day and a margin after the minute ends."""
    return f"{LUA['series']}{minute}"


def event(ref: str) -> str:
    """hash: an event's record; its existence is also the de-duplication window. `ref` is `{source}:{id}`."""
    return f"{LUA['event']}{ref}"


# --- entity names -----------------------------------------------------------------------------------------
class EntityName(NamedTuple):
    source: str
    kind: str
    ids: tuple[str, ...]


def encode_id(value: str) -> str:
    """An id as it appears in an entity name: percent-encoded but for RFC 3986's unreserved characters."""
    return quote(value, safe="")


def decode_id(part: str) -> str:
    return unquote(part, errors="strict")


def entity_name(source: str, kind: str, ids: Iterable[str]) -> str:
    """`{source}:{kind}:{encoded id}...`: the one spelling of an entity (see the module docstring)."""
    return ":".join([source, kind, *(encode_id(v) for v in ids)])


def entity_parts(name: str) -> EntityName:
    """The source, kind and decoded ids of an entity name. ValueError for a name without a kind."""
    source, kind, *ids = name.split(":")
    return EntityName(source, kind, tuple(decode_id(p) for p in ids))


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


def job_entity(job: str) -> str | None:
    """The entity of an entity job's arq id (`job_id`), or None for any other id."""
    if not job.startswith(PREFIX):
        return None
    name, sep, n = job[len(PREFIX) :].rpartition(":")
    return name if sep and n.isdigit() else None


# --- what happened to an entity (crmcore/timeline.py) ---------------------------------------------------------
def timeline(name: str) -> str:
    """list: the entity's newest status changes, JSON entries, newest first (trimmed, expiring)."""
    return f"{PREFIX}timeline:{name}"


def timeline_aliases(name: str) -> str:
    """zset alias -> learnt ms: what an operator may call the entity (a SKU, an order number, an email)."""
    return f"{PREFIX}timeline:{name}:aliases"


def alias(value: str) -> str:
    """zset entity name -> learnt ms: the entities an alias (lower-cased) names. Only aliases live under this
    prefix, so a value from outside needs no encoding here."""
    return f"{PREFIX}alias:{value}"


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
# The id of the initial sync that is queued or running: a second one is refused while it is (crmcore/initialsync.py).
INITIAL_SYNC_LOCK = lock("initial-sync")
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
