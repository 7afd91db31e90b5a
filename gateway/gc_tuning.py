"""Garbage-collector and allocator settings for the long-running processes.

Once the gateway has started, its heap holds a few hundred thousand long-lived objects (modules, pydantic
validators, the router) that never die. CPython's full collections walked all of them: measured under load,
each gen-2 pass paused the event loop 50-60 ms, ten times in a 13 s run, and those pauses were the gateway's
p99. Freezing what exists after start-up moves it out of the collector's sight, so a full pass only walks
what was allocated since.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import platform


def freeze_startup_heap() -> None:
    """Call once the process has finished starting (app built, connections made), before serving load."""
    gc.collect()  # what start-up already dropped should not be frozen alive
    gc.freeze()


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def release_free_heap() -> bool:
    """Collect what the closed connections left in reference cycles, then hand the C heap's free pages back to
    the OS; True if any were (glibc only, else a no-op).

    The collection first: a connection refused or answered before its body was read (401, 400) leaves its
    buffered chunks in a cycle with its request and handler, and after a flood the process allocates too
    little for the collector to run by itself. Measured with 200 such 1 MiB uploads: without it RSS stayed
    180 MiB up for as long as we watched; a full pass over what is not frozen takes a few ms.

    A request body is read in socket-sized chunks (up to 256 KiB each, then joined): glibc serves those from
    its heap once its mmap threshold has grown, and keeps the pages when they are freed. Measured with
    bench/slow_clients.py (200 stalled 1 MiB bodies): without it RSS stayed at the flood's 321 MiB after every
    connection had closed; with it, back to 72 MiB (start-up: 70) a second after the last close."""
    gc.collect()
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))
