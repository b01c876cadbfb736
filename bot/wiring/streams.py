"""Account streams, when `TRADEWIND_STREAMS` allows any: the manager over the gateway's
feeds, told of every account a command acts on and of every order sent, and of the
accounts that hold positions when the bot starts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal

from bot.wiring.core import Shared
from bot.wiring.trading import Trading
from core.exchange.models import Fill
from services.account_stream import CatchUp, FillSink
from services.caching import TICKERS
from services.stream_feeds import GatewayFeeds
from services.streams import StreamLimits, StreamManager

log = logging.getLogger(__name__)


class PolledFills:
    """The fill sink and catch-up until the fill ledger records executions: a pushed fill
    is logged and its account's cached state dropped, so the next read and the position
    sync see the exchange's truth, as polling did."""

    def __init__(self, trading: Trading) -> None:
        self._gateway = trading.exchanges

    async def record(
        self, user_id: int, exchange: str, account_type: str, fills: Sequence[Fill]
    ) -> None:
        for fill in fills:
            log.info(
                "fill %s of %s:%s:%s: %s %s %s @ %s",
                fill.fill_id, user_id, exchange, account_type, fill.side, fill.qty,
                fill.symbol, fill.price,
            )  # fmt: skip

    async def catch_up(self, user_id: int, exchange: str, account_type: str) -> None:
        self._gateway.account(user_id, exchange, account_type).forget()


async def build_streams(
    s: Shared, t: Trading, *, sink: FillSink | None = None, catch_up: CatchUp | None = None
) -> StreamManager | None:
    """The stream manager, started, with every account holding a stored position exposed;
    None when streaming is off. `sink` and `catch_up` are the fill ledger's `record` and
    its catch-up of one account; without them, `PolledFills`."""
    if s.settings.streams <= 0:
        return None
    tickers = s.cache.cache(TICKERS.name)

    def mark(exchange: str, symbol: str) -> Decimal | None:
        if tickers.peek_ttl_left(exchange) is None:  # not counted as a miss: nobody read
            return None
        found = (tickers.get(exchange) or {}).get(symbol)
        return None if found is None else found.last

    polled = PolledFills(t)
    manager = StreamManager(
        limits=StreamLimits(total=s.settings.streams),
        opener=GatewayFeeds(t.exchanges, paper=t.paper_events),
        accounts=t.exchanges.account,
        sink=sink or polled,
        catch_up=catch_up or polled.catch_up,
        clock=s.clock,
        metrics=s.metrics,
        marks=mark,
    )
    t.accounts.on_use.append(lambda ref: manager.touch(ref.user_id, ref.exchange, ref.account_type))
    t.exchanges.account_caches.on_order.append(manager.touch)
    s.metrics.watch_gauges("tradewind_streams", "Accounts streamed, by venue", manager.counts)
    manager.start()
    manager.expose(sorted({row.account for row in await s.repos.positions.all()}))
    return manager
