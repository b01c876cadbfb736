"""A fill sink that keeps what it is given, as the fill ledger would, and a catch-up that
reads the local exchange server's executions into it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from core.exchange.models import Fill


class FakeFillSink:
    """Implements `services.account_stream.FillSink`: unique per (account, fill id)."""

    def __init__(self) -> None:
        self.fills: dict[tuple[int, str, str, str], Fill] = {}
        self.deliveries: Counter[str] = Counter()  # fill id → times handed over

    async def record(
        self, user_id: int, exchange: str, account_type: str, fills: Sequence[Fill]
    ) -> None:
        for fill in fills:
            self.deliveries[fill.fill_id] += 1
            self.fills.setdefault((user_id, exchange, account_type, fill.fill_id), fill)

    def ids(self) -> set[str]:
        return {key[3] for key in self.fills}


class FakeCatchUp:
    """Counts catch-ups; each records what `read` says the account has executed."""

    def __init__(self, sink: FakeFillSink, read: Callable[[int, str, str], Sequence[Fill]]) -> None:
        self.sink = sink
        self.read = read
        self.calls: list[tuple[int, str, str]] = []

    async def __call__(self, user_id: int, exchange: str, account_type: str) -> None:
        self.calls.append((user_id, exchange, account_type))
        await self.sink.record(
            user_id, exchange, account_type, self.read(user_id, exchange, account_type)
        )
