"""A spawned worker reports its own peak memory, not its parent's (`peak_mb`)."""

from __future__ import annotations

import multiprocessing
import sys

import numpy as np
import pytest

from services.backtest_worker import peak_mb

HELD_MB = 300


def _report(queue: multiprocessing.Queue[float]) -> None:
    queue.put(peak_mb())


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM is Linux's")
def test_a_spawned_worker_does_not_count_what_its_parent_holds() -> None:
    held = np.ones(HELD_MB * 2**20 // 8)  # the bot's memory at the moment it spawns a worker
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[float] = context.Queue()
    child = context.Process(target=_report, args=(queue,))
    child.start()
    try:
        reported = queue.get(timeout=60)
    finally:
        child.join(timeout=60)
    assert held.sum() > 0  # held until the child has answered
    assert 0 < reported < HELD_MB / 2  # an interpreter with numpy: tens of MB
    assert peak_mb() >= HELD_MB  # the parent itself holds it
