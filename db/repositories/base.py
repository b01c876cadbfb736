"""What every repository shares: the store, optional transaction composition, and the
converters between Python values and the store's column formats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal

from db.store import Store, Tx


class Repository:
    """Base of the repositories: holds the store, lends a transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @asynccontextmanager
    async def _tx(self, tx: Tx | None, *, durable: bool = False) -> AsyncIterator[Tx]:
        """Use the caller's transaction, or open one just for this write."""
        if tx is not None:
            yield tx
        else:
            async with self.store.transaction(durable=durable) as own:
                yield own


def to_ms(moment: datetime) -> int:
    """UTC datetime → integer unix milliseconds, the store's time format."""
    return int(moment.timestamp() * 1000)


def from_ms(ms: int | None) -> datetime | None:
    """Integer unix milliseconds → UTC datetime (None stays None)."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def from_ms_req(ms: int) -> datetime:
    """Like `from_ms` for NOT NULL columns."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def to_text(value: Decimal | None) -> str | None:
    """Decimal → TEXT, every digit kept: the store never rounds a price or quantity."""
    return None if value is None else str(value)


def to_dec(text: str | None) -> Decimal | None:
    """TEXT → Decimal, exact (None stays None)."""
    return None if text is None else Decimal(text)
