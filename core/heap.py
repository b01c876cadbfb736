"""Keep full garbage collections short: freeze the survivors of a slow one.

A full collection walks every tracked object. A bot holding python-telegram-bot, ccxt's
endpoint tables, market tables and caches tracks ~300,000 of them, and walking them takes
~100 ms, several times a minute, while no chat is answered. Nearly all of them live as long
as the process. So right after a full collection that was slow (its survivors are what is
alive), `HeapGuard.tend` freezes them (`gc.freeze`): later full collections walk only what
was made since, ~10–40 ms. Freezing costs no pause of its own.

Frozen objects are still freed as soon as nothing refers to them; only a reference cycle
that dies while frozen waits. So every `thaw_every_s` the guard unfreezes everything: the
next full collection reclaims such cycles (one long pause) and is frozen again in turn.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

SLOW_FULL_COLLECTION_S = 0.03
THAW_EVERY_S = 1800.0


class HeapGuard:
    """Watches full collections; `tend()` (from a job) freezes after a slow one."""

    def __init__(
        self,
        *,
        slow_s: float = SLOW_FULL_COLLECTION_S,
        thaw_every_s: float = THAW_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slow_s = slow_s
        self.thaw_every_s = thaw_every_s
        self._clock = clock
        self._started = 0.0
        self._slow_seen = False
        self._thawed_at = clock()
        self.freezes = 0
        self.thaws = 0

    def __enter__(self) -> Self:
        gc.callbacks.append(self._observe)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._observe in gc.callbacks:
            gc.callbacks.remove(self._observe)
        if self.freezes:
            gc.unfreeze()  # a stopped bot leaves the process's collector as it found it

    def tend(self) -> str | None:
        """Freeze after a slow full collection, thaw now and then; say what was done."""
        if self._clock() - self._thawed_at >= self.thaw_every_s:
            gc.unfreeze()
            self._thawed_at = self._clock()
            self._slow_seen = False
            self.thaws += 1
            return "unfroze the heap: the next full collection reclaims old cycles"
        if not self._slow_seen:
            return None
        self._slow_seen = False
        gc.freeze()
        self.freezes += 1
        return "froze the survivors of a slow full collection"

    def _observe(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        elif time.perf_counter() - self._started >= self.slow_s:
            self._slow_seen = True
