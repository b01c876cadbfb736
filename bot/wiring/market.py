"""The market side: the registry of listed symbols, the scanner and the signals it finds."""

from __future__ import annotations

from dataclasses import dataclass

from bot.wiring.core import Shared
from services.exchanges import ExchangeGateway
from services.licenses import LicenseService
from services.market import MarketService
from services.market_registry import MarketRegistry
from services.price_alerts import PriceAlertService
from services.scanner import Scanner
from services.signals import SignalService


@dataclass(slots=True, frozen=True)
class Market:
    registry: MarketRegistry
    signals: SignalService
    scanner: Scanner


def build_market(s: Shared, exchanges: ExchangeGateway) -> Market:
    registry = MarketRegistry(
        exchanges, s.repos.markets, s.clock, s.metrics, interval_s=s.settings.sync_interval
    )
    signals = SignalService(s.repos.signals, s.work, s.clock)
    scanner = Scanner(exchanges, registry, signals, s.clock, interval_s=s.settings.scan_interval)
    return Market(registry=registry, signals=signals, scanner=scanner)


def build_price_alerts(
    s: Shared, market: MarketService, licenses: LicenseService
) -> PriceAlertService:
    """Price alerts watch the scanner's market source."""
    return PriceAlertService(
        s.repos.price_alerts, s.work, market, licenses, s.clock, s.settings.market_source
    )
