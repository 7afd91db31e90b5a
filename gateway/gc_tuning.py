"""Garbage-collector settings for the long-running processes.

Once the gateway has started, its heap holds a few hundred thousand long-lived objects (modules, pydantic
validators, the router) that never die. CPython's full collections walked all of them: measured under load,
each gen-2 pass paused the event loop 50-60 ms, ten times in a 13 s run, and those pauses were the gateway's
p99. Freezing what exists after start-up moves it out of the collector's sight, so a full pass only walks
what was allocated since.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Call once the process has finished starting (app built, connections made), before serving load."""
    gc.collect()  # what start-up already dropped should not be frozen alive
    gc.freeze()
