"""Trade management: TP/SL and trailing stops of open positions, and the trailing stops the
bot keeps for venues without a native one."""

from __future__ import annotations

from dataclasses import dataclass

from bot.wiring.core import Shared
from bot.wiring.trading import Trading
from db.repositories.trailing import TrailingRepository
from services.position_management import PositionManagementService
from services.trailing import TrailingService


@dataclass(slots=True, frozen=True)
class Management:
    positions: PositionManagementService
    trailing: TrailingService


def build_management(s: Shared, t: Trading) -> Management:
    trailing = TrailingService(
        TrailingRepository(s.store), s.repos.users, s.work, t.market, t.exchanges, t.executor,
        s.clock,
    )  # fmt: skip
    positions = PositionManagementService(t.accounts, t.exchanges, t.market, t.strategy, trailing)
    return Management(positions, trailing)
