"""The long-running processes freeze their start-up heap so full collections stop pausing the event loop."""

from __future__ import annotations

import gc

from gateway.gc_tuning import freeze_startup_heap


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
