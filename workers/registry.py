"""Event type -> sync handler. The sync rules (#4-#7) register theirs; tests register their own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from gateway.events import AcceptedEvent, Source
from gateway.settings import Settings


@dataclass
class HandlerContext:
    """What a handler may use. API clients join it when the sandboxes and clients land (#3)."""

    redis: Redis
    settings: Settings
    job_id: str
    attempt: int
    extras: dict[str, Any] = field(default_factory=dict)


# Called with every event of one type for one entity that this run coalesced, oldest first. Events are
# change signals: a handler fetches the current state, so usually only the newest one matters.
Handler = Callable[[HandlerContext, list[AcceptedEvent]], Awaitable[None]]


class Registry:
    def __init__(self) -> None:
        self._handlers: dict[tuple[Source, str], Handler] = {}

    def register(self, source: Source, event_type: str, handler: Handler) -> None:
        self._handlers[(source, event_type)] = handler

    def on(self, source: Source, *event_types: str) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            for event_type in event_types:
                self.register(source, event_type, handler)
            return handler

        return decorate

    def get(self, source: Source, event_type: str) -> Handler | None:
        return self._handlers.get((source, event_type))

    def __len__(self) -> int:
        return len(self._handlers)


def default_registry() -> Registry:
    """The handlers this build ships. Empty until the sync rules land: events are then marked skipped."""
    return Registry()
