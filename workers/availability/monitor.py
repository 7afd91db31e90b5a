"""Each worker's view of Magento and Cloud Retailer, and what it does about a remote that is down.

- A cache of both remotes' shared state (crmcore/remotes.py), refreshed every second, which the dispatcher
  asks before it runs a job: a job that needs a remote that is not up is parked without trying.
- `confirm()`: a job's call failed the way a down remote fails (RemoteUnavailable, or a 401). Is it the
  remote or this record? One probe answers it (shared by the jobs that fail together): if the remote does not
  answer the probe either, it is marked down and the job parks; if it does, the failure is the record's own
  and spends an attempt as before. `misconfigured()`: a handler found a setting wrong; no probe needed.
- The probe loop: while a remote is not up, one worker at a time (a lease) probes it when its backoff is due
  (1 s, doubling to 40 s). When it answers, it is marked up and its parked entities are drained.
- The start-up check: every worker checks both remotes when it starts, so a wrong setting is one clear log
  line naming the variable, and that remote's jobs park as "misconfigured" instead of failing one by one.
- Takeover of dead workers (takeover.py), from the same loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from crmcore import keys
from crmcore.clock import now_ms
from crmcore.entityqueue import EntityQueue
from crmcore.errors import clip
from crmcore.remotes import MARK_DOWN_LUA, MARK_UP_LUA, Remote, RemoteState, RemoteStateName, read_states
from crmcore.settings import Settings
from workers.availability.checks import Checker, CheckResult
from workers.availability.drain import Drainer
from workers.availability.takeover import Takeover

log = structlog.get_logger(__name__)

TICK_S = 1.0
TAKEOVER_EVERY_S = 2.0
PROBE_LEASE_MS = 30_000
# A confirmation is reused this long by the jobs that fail right after it.
CONFIRM_REUSE_S = 1.0


class RemoteMonitor:
    def __init__(
        self,
        redis: Redis,
        settings: Settings,
        queue: EntityQueue,
        worker_id: str,
        checker: Checker | None = None,
    ) -> None:
        self.redis, self.settings, self.worker_id = redis, settings, worker_id
        self.checker = checker or Checker(settings)
        self.states: dict[Remote, RemoteState] = {r: RemoteState(r) for r in Remote}
        self.drainer = Drainer(redis, settings, queue, worker_id)
        self.takeover = Takeover(redis, settings, queue, worker_id)
        self._mark_down = redis.register_script(MARK_DOWN_LUA)
        self._mark_up = redis.register_script(MARK_UP_LUA)
        self._confirming: dict[Remote, asyncio.Task[RemoteState]] = {}
        self._confirmed: dict[Remote, tuple[float, RemoteState]] = {}
        self._drains: dict[Remote, asyncio.Task[int]] = {}
        self._task: asyncio.Task[None] | None = None

    # --- what the dispatcher asks ------------------------------------------------------------------------
    def blocked(self, needs: Iterable[Remote]) -> RemoteState | None:
        """The first remote of `needs` that is not up (as of the last refresh), or None."""
        for remote in needs:
            if not self.states[remote].up:
                return self.states[remote]
        return None

    async def confirm(self, remote: Remote) -> RemoteState:
        """A call to `remote` failed the way a down remote fails: probe it (once for all the jobs failing
        together) and return its state."""
        if not self.states[remote].up:
            return self.states[remote]
        reused = self._confirmed.get(remote)
        if reused is not None and time.monotonic() - reused[0] < CONFIRM_REUSE_S:
            return reused[1]
        task = self._confirming.get(remote)
        if task is None or task.done():
            task = asyncio.create_task(self._confirm(remote), name=f"confirm-{remote}")
            self._confirming[remote] = task
        return await asyncio.shield(task)

    async def misconfigured(self, remote: Remote, setting: str, error: str) -> RemoteState:
        """A handler found a setting of `remote` wrong (MisconfiguredError): no probe could say otherwise, so the
        remote is marked at once, as the start-up check marks it."""
        await self.apply(remote, CheckResult(RemoteStateName.MISCONFIGURED, clip(error), setting), probe=False)
        return self.states[remote]

    async def _confirm(self, remote: Remote) -> RemoteState:
        if remote not in self.checker.configured():
            return self.states[remote]
        await self.apply(remote, await self.checker.check(remote), probe=False)
        state = self.states[remote]
        self._confirmed[remote] = (time.monotonic(), state)
        return state

    # --- life cycle ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Check both remotes now (the start-up check), then keep watching them."""
        remotes = self.checker.configured()
        results = await asyncio.gather(*(self.checker.check(r) for r in remotes))
        for remote, result in zip(remotes, results, strict=True):
            await self.apply(remote, result, probe=False)
        self._task = asyncio.create_task(self._loop(), name="remote-monitor")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._drains.values(), *self._confirming.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None
        await self.checker.close()

    async def refresh(self) -> None:
        self.states = await read_states(self.redis)

    async def _loop(self) -> None:
        last_takeover = 0.0
        while True:
            try:
                await self.refresh()
                for remote in self.checker.configured():
                    await self._watch(remote)
                if time.monotonic() - last_takeover >= TAKEOVER_EVERY_S:
                    last_takeover = time.monotonic()
                    await self.takeover.run()
            except (RedisError, OSError) as exc:
                self.takeover.connection_lost()
                log.warning("remote_monitor_redis_failed", error=type(exc).__name__)
            await asyncio.sleep(TICK_S)

    async def _watch(self, remote: Remote) -> None:
        state = self.states[remote]
        if not state.up:
            if state.next_probe_ms is None or now_ms() >= state.next_probe_ms:
                await self._probe(remote)
        elif state.parked:
            # Up with work parked: a drain that died with its worker, or entities parked on a stale view.
            self._start_drain(remote)

    async def _probe(self, remote: Remote) -> None:
        key = keys.remote_probe_lock(remote)
        if not await self.redis.set(key, self.worker_id, nx=True, px=PROBE_LEASE_MS):
            return
        try:
            await self.apply(remote, await self.checker.check(remote), probe=True)
        finally:
            if await self.redis.get(key) == self.worker_id.encode():
                await self.redis.delete(key)

    # --- state changes -----------------------------------------------------------------------------------------
    async def apply(self, remote: Remote, result: CheckResult, *, probe: bool) -> None:
        """Record what a check found in the shared state, log a change once, and drain a remote that is back."""
        now = now_ms()
        if result.state is RemoteStateName.UP:
            was = await self._mark_up(keys=[keys.remote(remote)], args=[now])
            was = was.decode() if isinstance(was, bytes) else was
            await self.refresh()
            if was not in ("", "up"):
                log.info("remote_up", remote=remote.value, was=was, parked=self.states[remote].parked)
            if self.states[remote].parked:
                self._start_drain(remote)
            return
        changed = await self._mark_down(
            keys=[keys.remote(remote)],
            args=[result.state.value, result.detail, result.setting, now, 1 if probe else 0],
        )
        await self.refresh()
        if not changed:
            return
        if result.state is RemoteStateName.MISCONFIGURED:
            log.error("remote_misconfigured", remote=remote.value, setting=result.setting, reason=result.detail)
        else:
            log.warning("remote_unavailable", remote=remote.value, error=result.detail)

    def _start_drain(self, remote: Remote) -> None:
        task = self._drains.get(remote)
        if task is None or task.done():
            self._drains[remote] = asyncio.create_task(self._drain(remote), name=f"drain-{remote}")

    async def _drain(self, remote: Remote) -> int:
        try:
            return await self.drainer.drain(remote)
        except (RedisError, OSError) as exc:
            log.warning("remote_drain_failed", remote=remote.value, error=type(exc).__name__)
            return 0
