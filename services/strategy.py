"""Per-trader strategy settings: parsed once, cached, changed one validated key at a time."""

from __future__ import annotations

from core.cache import CacheLayer
from core.clock import Clock
from db.repositories.strategy import StrategyRecord, StrategyRepository
from services.caching import STRATEGY

__all__ = ["StrategyRecord", "StrategyService"]


class StrategyService:
    """Reads and saves strategy settings through a cache of parsed records."""

    def __init__(self, strategies: StrategyRepository, cache: CacheLayer, clock: Clock) -> None:
        self._strategies = strategies
        self._cache = cache.cache(STRATEGY.name)
        self._clock = clock

    async def settings(self, user_id: int) -> StrategyRecord:
        """The trader's settings (defaults if never changed), parsed once per cache life."""

        async def load() -> StrategyRecord:
            return await self._strategies.get(user_id)

        record: StrategyRecord = await self._cache.get_or_load(str(user_id), load)
        return record

    async def save(self, record: StrategyRecord) -> None:
        await self._strategies.save(record, self._clock.now())
        self._cache.set(str(record.user_id), record)
