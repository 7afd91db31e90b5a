"""The sync rules (docs/design.md, Sync rules), one module per domain. Each module's `register(registry, settings)`
adds its event handlers, admin jobs and crons.

What a domain builds on:
- handlers: `registry.register(source, type, handler)`; a handler gets `HandlerContext` (ctx.magento, ctx.cr,
  ctx.redis, ctx.settings) and the coalesced events of one entity; it fetches current state and applies it.
  Raise workers.errors.PermanentError (dead letter) / TransientError (retry) / Skip.
- id mapping: workers/binder.py (`Binder`, with `bind_new` for races); fan-out of many changes through
  the same queue and handlers: workers/feed.py.
- admin jobs: POST /admin/resync/{products|categories|customers|orders} and /admin/reconcile/inventory are
  routed by gateway/adminjobs.py to job kinds `resync-<kind>` / `reconcile-inventory`;
  `registry.register_job(kind, job)` with `job(ctx, params, progress) -> result dict`. They and the crons
  (`registry.register_cron(arq.cron(...))`) run on the long queue (workers/worker.py `build_long_worker`).
- reports: `HSET keys.REPORTS <name> <json>` shows in GET /admin/status under `reports`.
- end-to-end tests: tests/support/stack.py `full_stack(...)` runs both sandboxes, the gateway and workers.
"""

from __future__ import annotations

from crmcore.settings import Settings
from workers.registry import Registry
from workers.sync import catalog, catchup, customers, inventory, orders

DOMAINS = (catalog, inventory, orders, customers, catchup)


def register_all(registry: Registry, settings: Settings | None = None) -> None:
    for domain in DOMAINS:
        domain.register(registry, settings)
