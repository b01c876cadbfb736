"""Streams, when `TRADEWIND_STREAMS` allows any: the account stream manager over the
gateway's feeds, told of every account a command acts on and of every order sent, and of
the accounts that hold positions when the bot starts; and, when the market source is a
live exchange, its public ticker stream feeding the gateway's ticker tape."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.wiring.core import Shared
from bot.wiring.trading import Trading
from core.exchange.errors import ExchangeError
from core.exchange.feed import TickerFeed, open_ticker_feed
from core.exchange.models import Fill, unexplained_close
from core.exchange.venues import PAPER
from services.account_stream import CatchUp, FillSink
from services.exchanges import ExchangeGateway
from services.fill_ledger import FillLedger
from services.fill_ledger_catchup import FillCatchUp
from services.stream_feeds import GatewayFeeds
from services.streams import StreamLimits, StreamManager
from services.ticker_stream import TickerStream

log = logging.getLogger(__name__)


class LedgerFills:
    """The fill ledger as the streams' sink: a pushed execution is recorded once (keyed by
    the venue's execution id, so its REST copy later changes nothing), and a gap is closed
    by the ledger's REST catch-up of that account from its cursor."""

    def __init__(self, ledger: FillLedger, catchup: FillCatchUp, gateway: ExchangeGateway) -> None:
        self._ledger = ledger
        self._catchup = catchup
        self._gateway = gateway

    async def record(
        self, user_id: int, exchange: str, account_type: str, fills: Sequence[Fill]
    ) -> None:
        if any(unexplained_close(f) for f in fills):  # an OKX TP or SL: its push names none
            fills = await self._named(user_id, exchange, account_type, fills)
        recorded = await self._ledger.record(user_id, exchange, account_type, fills)
        log.debug("pushed fills of %s:%s:%s: %s", user_id, exchange, account_type, recorded)

    async def catch_up(self, user_id: int, exchange: str, account_type: str) -> None:
        await self._catchup.catch_up([(user_id, exchange, account_type)])

    async def _named(
        self, user_id: int, exchange: str, account_type: str, fills: Sequence[Fill]
    ) -> Sequence[Fill]:
        try:
            async with self._gateway.lease(user_id, exchange, account_type) as client:
                return await client.name_triggers(fills)
        except ExchangeError as error:  # recorded as they are: the close's cause unnamed
            log.info("what closed %s:%s:%s not named: %s", user_id, exchange, account_type, error)
            return fills


async def build_streams(
    s: Shared, t: Trading, *, sink: FillSink | None = None, catch_up: CatchUp | None = None
) -> StreamManager | None:
    """The stream manager, started, with every account holding a stored position exposed;
    None when streaming is off. `sink` and `catch_up` are the fill ledger's `record` and
    its catch-up of one account; without them, `LedgerFills`."""
    if s.settings.streams <= 0:
        return None
    ledger = LedgerFills(t.fill_ledger, t.fill_catchup, t.exchanges)
    manager = StreamManager(
        limits=StreamLimits(total=s.settings.streams),
        opener=GatewayFeeds(t.exchanges, paper=t.paper_events),
        accounts=t.exchanges.account,
        sink=sink or ledger,
        catch_up=catch_up or ledger.catch_up,
        clock=s.clock,
        metrics=s.metrics,
        marks=t.exchanges.last_price,
    )
    t.accounts.on_use.append(lambda ref: manager.touch(ref.user_id, ref.exchange, ref.account_type))
    t.exchanges.account_caches.on_order.append(manager.touch)
    s.metrics.watch_gauges("tradewind_streams", "Accounts streamed, by venue", manager.counts)
    manager.start()
    manager.expose(sorted({row.account for row in await s.repos.positions.all()}))
    return manager


def build_ticker_stream(s: Shared, t: Trading) -> TickerStream | None:
    """The market source's public ticker stream, started; None when streaming is off or
    the market source is the synthetic paper market (its prices are in memory)."""
    gateway = t.exchanges
    source = gateway.market_source
    if s.settings.streams <= 0 or source == PAPER:
        return None
    venue = gateway.venue(source)

    async def opener() -> TickerFeed:
        return open_ticker_feed(venue, stream.gap)

    stream = TickerStream(source, gateway, opener, lambda: venue.markets().keys())
    s.metrics.watch_gauges(
        "tradewind_ticker_stream", "The market source's public ticker stream", stream.gauges
    )
    stream.start()
    return stream
