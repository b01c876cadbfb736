"""A small world for auto-trading tests: the real services over SQLite, the local Bybit
server for real-exchange accounts, the synthetic market for paper ones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from bot.wiring import build_services
from core.cache import CacheLayer
from core.config import Settings
from core.crypto import SecretBox, generate_key
from core.exchange.credentials import ApiCredentials
from core.metrics import Metrics
from db.repositories.licenses import LicenseRepository
from db.repositories.signals import SignalDraft, SignalRecord, SignalRepository
from db.repositories.strategy import StrategyRecord, StrategyRepository
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.container import Services
from tests.exchange_server import ExchangeServer
from tests.fakes.clock import FakeClock

BTC = "BTC/USDT:USDT"


@dataclass(slots=True)
class World:
    store: Store
    server: ExchangeServer
    services: Services
    clock: FakeClock

    async def trader(
        self,
        user_id: int,
        exchange: str = "bybit",
        *,
        licensed: bool = True,
        balance: str = "10000",
        **strategy: object,
    ) -> None:
        """A user with auto-trading on, a licence and a connected account."""
        now = self.clock.now()
        await UserRepository(self.store).upsert(UserProfile(user_id, user_id, "T"), now)
        settings = {"auto_trade": True, "min_score": 0.5, "size_usdt": Decimal(100)} | strategy
        record = replace(StrategyRecord(user_id), **settings)  # type: ignore[arg-type]
        await StrategyRepository(self.store).save(record, now)
        if licensed:
            await LicenseRepository(self.store).extend(user_id, 30, "pro", "grant", now)
        if exchange == "paper":
            await self.services.accounts.connect(user_id, "paper", "paper")
            return
        key, secret = f"key{user_id}", f"secret{user_id}"
        self.server.add_account(key, secret, Decimal(balance))
        await self.services.accounts.connect(user_id, "bybit", "demo", ApiCredentials(key, secret))

    async def signal(
        self, symbol: str = BTC, side: str = "long", score: float = 0.9
    ) -> SignalRecord:
        price = (await self.services.market.ticker("bybit", symbol)).last
        draft = SignalDraft(
            "bybit", symbol, side, score, price, 5, Decimal(3), Decimal("1.5"), ("test",)
        )
        return await SignalRepository(self.store).insert(draft, self.clock.now())

    def orders_with(self, user_id: int, cid: str) -> int:
        orders = self.server.account(f"key{user_id}").orders.values()
        return sum(1 for order in orders if order.link_id == cid)

    async def rows(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        return [tuple(r) for r in await self.store.fetchall("test", sql, params)]


@asynccontextmanager
async def world(store: Store, tmp_path: Path, streams: int = 0) -> AsyncIterator[World]:
    async with ExchangeServer(symbols=["BTCUSDT", "ETHUSDT"], seed=3) as server:
        server.set_price("BTCUSDT", "60000")
        clock = FakeClock(datetime.now(UTC))
        settings = Settings(
            db_path=tmp_path / "tradewind.db",
            master_key_file=tmp_path / "master.key",
            exchange_urls={"bybit": server.base_url},
            metrics_addr=None,
            streams=streams,
        )
        services = await build_services(
            settings, store, clock, Metrics(), CacheLayer(clock), SecretBox([generate_key()]),
            frozenset(),
        )  # fmt: skip
        try:
            yield World(store, server, services, clock)
        finally:
            await services.aclose()
