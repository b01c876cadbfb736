"""Opens account feeds through the gateway: ccxt.pro streams for real venues (one
`FeedSource` per venue, sharing its markets and base URL), the paper exchange's own events
for paper accounts."""

from __future__ import annotations

from core.exchange.feed import AccountFeed, FeedSource, GapHandler, open_feeds
from core.exchange.venues import PAPER
from core.paper.events import PaperEvents
from services.exchanges import ExchangeGateway


class GatewayFeeds:
    """The `FeedOpener` of a running bot."""

    def __init__(
        self,
        gateway: ExchangeGateway,
        *,
        paper: PaperEvents | None = None,
        keepalive_ms: int | None = None,
    ) -> None:
        self._gateway = gateway
        self._paper = paper
        self._keepalive_ms = keepalive_ms
        self._sources: dict[str, FeedSource] = {}

    async def open_feed(
        self, user_id: int, exchange: str, account_type: str, on_gap: GapHandler
    ) -> AccountFeed:
        if exchange == PAPER:
            if self._paper is None:
                raise ValueError("paper accounts are not streamed in this process")
            return self._paper.feed(user_id, on_gap)
        credentials = await self._gateway.credentials(user_id, exchange, account_type)
        source = self._sources.get(exchange)
        if source is None:
            venue = self._gateway.venue(exchange)
            source = self._sources[exchange] = open_feeds(venue, keepalive_ms=self._keepalive_ms)
        return await source.open(account_type, credentials, on_gap)

    async def aclose(self) -> None:
        for source in self._sources.values():
            await source.aclose()
        self._sources.clear()
