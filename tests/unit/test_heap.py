"""The heap guard freezes the survivors of a slow full collection, and thaws them later."""

from __future__ import annotations

import gc

from core.heap import HeapGuard
from tests.fakes.clock import FakeClock


def test_freezes_after_a_slow_full_collection_and_thaws_on_schedule() -> None:
    clock = FakeClock()
    try:
        with HeapGuard(slow_s=0.0, thaw_every_s=600, clock=clock.monotonic) as guard:
            assert guard.tend() is None  # no full collection yet: nothing to do
            gc.collect(1)
            assert guard.tend() is None  # a young collection says nothing about the heap
            gc.collect()  # "slow": every full collection is, with slow_s=0
            assert guard.tend() == "froze the survivors of a slow full collection"
            assert gc.get_freeze_count() > 0
            assert guard.tend() is None  # once per slow collection
            clock.advance(600)
            assert guard.tend() is not None and gc.get_freeze_count() == 0
            assert (guard.freezes, guard.thaws) == (1, 1)
        assert guard._observe not in gc.callbacks
    finally:
        gc.unfreeze()


def test_leaving_unfreezes_what_it_froze() -> None:
    with HeapGuard(slow_s=0.0) as guard:
        gc.collect()
        guard.tend()
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
