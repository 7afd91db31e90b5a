"""The sync rules (docs/design.md, Sync rules), one module per domain. Each module's `register(registry, settings)`
adds its event handlers, admin jobs and periodic jobs.

What a domain builds on:
- handlers: `registry.register(source, type, handler)`; a handler gets `HandlerContext` (ctx.magento, ctx.cr,
  ctx.redis, ctx.settings) and the coalesced events of one entity; it fetches current state and applies it.
  Raise workers.errors.PermanentError (dead letter) / TransientError (retry) / Skip.
- id mapping: workers/binder.py (`Binder`, with `bind_new` for races); fan-out of many changes through
  the same queue and handlers: workers/feed.py.
- admin jobs: POST /admin/resync/{products|categories|customers|orders} and /admin/reconcile/inventory are
  routed by gateway/adminjobs.py to job kinds `resync-<kind>` / `reconcile-inventory`;
  `registry.register_job(kind, job)` with `job(ctx, params, progress) -> result dict`. They run on the long
  queue (workers/worker.py `build_long_worker`).
- periodic jobs: `registry.register_periodic(Periodic(name, interval=lambda settings: ..., run=...))`
  (workers/periodic/): the scheduler on the long worker runs each once per interval across all workers,
  under its lease, skipped while a remote it needs is down, and stores its report under `name` in
  `keys.REPORTS` (GET /admin/status, `reports`), in the one shape every periodic run reports in.
- the initial sync (workers/sync/initial/) runs other domains' admin jobs as its phases, found in the registry
  by kind, so it reaches into no domain.
- end-to-end tests: tests/support/stack.py `full_stack(...)` runs both sandboxes, the gateway and workers.
"""

from __future__ import annotations

from crmcore.settings import Settings
from workers.registry import Registry
from workers.sync import catalog, catchup, customers, initial, inventory, orders

DOMAINS = (catalog, inventory, orders, customers, catchup, initial)


def register_all(registry: Registry, settings: Settings) -> None:
    for domain in DOMAINS:
        domain.register(registry, settings)
