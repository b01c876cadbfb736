"""Trade management: TP/SL and trailing stops of open positions, and the trailing stops the
bot keeps for venues without a native one."""

from __future__ import annotations

from dataclasses import dataclass

from bot.wiring.core import Shared
from bot.wiring.trading import Trading
from db.repositories.ladders import LadderRepository
from db.repositories.trailing import TrailingRepository
from services.ladder import LadderService
from services.position_management import PositionManagementService
from services.trailing import TrailingService


@dataclass(slots=True, frozen=True)
class Management:
    positions: PositionManagementService
    trailing: TrailingService
    ladders: LadderService


def build_management(s: Shared, t: Trading) -> Management:
    trailing = TrailingService(
        TrailingRepository(s.store), s.repos.users, s.work, t.market, t.exchanges, t.executor,
        s.clock,
    )  # fmt: skip
    positions = PositionManagementService(t.accounts, t.exchanges, t.market, t.strategy, trailing)
    ladders = LadderService(
        LadderRepository(s.store), t.strategy, t.market, t.exchanges, t.executor, s.clock,
        users=s.repos.users, outbox=s.outbox,
    )  # fmt: skip
    t.executor.when_opening_fills(ladders.on_filled)
    t.executor.when_opening_fills(positions.on_opened)  # the strategy's trail_pct
    return Management(positions, trailing, ladders)
