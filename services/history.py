"""Realised trades: recorded when positions close, read back by /trades and /pnl."""

from __future__ import annotations

from db.repositories.trades import TradeLog, TradeRecord, TradeRepository

__all__ = ["HistoryService", "TradeLog", "TradeRecord"]


class HistoryService:
    """Writes and reads the trade log."""

    def __init__(self, trades: TradeRepository) -> None:
        self._trades = trades

    async def record_close(self, trade: TradeLog) -> int:
        """Log one realised trade; return its id."""
        return await self._trades.record(trade)

    async def recent(self, user_id: int, limit: int = 10, offset: int = 0) -> list[TradeRecord]:
        return await self._trades.recent(user_id, limit, offset)
