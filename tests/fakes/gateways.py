"""One builder for the exchange gateway of tests and benchmarks that trade against the
local exchange server: real ccxt venues rebased to it, paper on a synthetic market."""

from __future__ import annotations

from core.cache import CacheLayer
from core.clock import Clock
from core.crypto import SecretBox, generate_key
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.factory import VenueHandle
from core.exchange.retry import RetryPolicy
from core.exchange.venues import VENUES
from core.paper.ledger import PaperLedger
from core.paper.market_source import MarketSource
from core.paper.synthetic import SyntheticMarket
from db.repositories.credentials import CredentialRepository
from db.repositories.paper import PaperRepository
from db.store import Store
from services.exchanges import ExchangeGateway

# What the stream and cache tests retry with: once more, at once.
QUICK = RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.002, max_retry_after=0.1)


def local_gateway(
    store: Store,
    clock: Clock,
    *,
    base_url: str = "",
    source: str = "paper",
    secrets: SecretBox | None = None,
    cache: CacheLayer | None = None,
    market: MarketSource | None = None,
    ledger: PaperLedger | None = None,
    retry: RetryPolicy | None = None,
) -> ExchangeGateway:
    """A gateway over `store` whose exchanges answer at `base_url`; `source` is the
    scanner's market (paper: `market`, by default a synthetic one on `clock`)."""

    def opener(name: str) -> VenueHandle:
        return CcxtVenue(VENUES[name], base_url=base_url or None, retry=retry)

    return ExchangeGateway(
        market_source=source,
        paper_market=market if market is not None else SyntheticMarket(clock=clock),
        paper_ledger=ledger if ledger is not None else PaperRepository(store),
        credentials=CredentialRepository(store),
        secrets=secrets if secrets is not None else SecretBox([generate_key()]),
        clock=clock,
        cache=cache,
        venue_opener=opener,
    )
