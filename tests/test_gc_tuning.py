"""The long-running processes freeze their start-up heap so full collections stop pausing the event loop."""

from __future__ import annotations

import gc
import weakref

from gateway.gc_tuning import freeze_startup_heap, release_free_heap


def test_freezing_moves_the_startup_heap_out_of_the_collectors_sight() -> None:
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        gc.collect()  # what earlier tests left as garbage is not part of any start-up heap
        tracked_before = len(gc.get_objects())
        freeze_startup_heap()
        # Nearly everything alive now is frozen: what a full collection walks afterwards is what came later.
        assert gc.get_freeze_count() > 0.9 * tracked_before
        assert len(gc.get_objects()) < 0.1 * tracked_before
    finally:
        gc.unfreeze()


def test_releasing_the_heap_first_collects_what_closed_connections_left_in_cycles() -> None:
    class Buffered:
        """A refused connection's request and its chunks: they refer to each other."""

        def __init__(self) -> None:
            self.chunks = [bytearray(256 * 1024) for _ in range(4)]
            self.me = self

    gc.disable()  # as after a flood: the process allocates too little for the collector to run by itself
    try:
        left = Buffered()
        gone = weakref.ref(left)
        del left
        assert gone() is not None
        release_free_heap()
        assert gone() is None
    finally:
        gc.enable()
