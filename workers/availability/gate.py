"""What a cron or an admin job asks before it starts: is a remote it needs down? A cron that finds one down
skips its run (and says so in its report) rather than failing it; its cursors stay where they were."""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

from crmcore.remotes import BOTH_REMOTES, Remote, RemoteState, read_states
from workers.clients.errors import RemoteUnavailable


async def blocked_remote(redis: Redis, needs: Iterable[Remote] = BOTH_REMOTES) -> RemoteState | None:
    """The first remote of `needs` that is not up, or None."""
    states = await read_states(redis)
    for remote in needs:
        if not states[remote].up:
            return states[remote]
    return None


def skip_reason(state: RemoteState) -> str:
    return f"{state.remote.label} is {state.describe()}"


def outage_reason(exc: RemoteUnavailable) -> str:
    """What `skip_reason` says of a remote's state, for a call that failed before the state showed it."""
    try:
        label = Remote(exc.system).label
    except ValueError:
        label = exc.system
    return f"{label} is unavailable ({exc})"
