"""Price alerts: "tell me when BTC is above 70,000", checked against every ticker snapshot.

Alerts live on the scanner's market source (the paper market unless
`TRADEWIND_MARKET_SOURCE` names an exchange). They are stored, and mirrored in an
`AlertBook` loaded from the store on first use, so a check costs one pass over the snapshot's
symbols, not one look per alert. A fired alert is marked fired and its notice queued in one
transaction (dedup key per alert): it fires once, restarts included. Setting one counts as
managing exposure, so it needs no licence; only the cap differs.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from core.clock import Clock
from core.errors import InvalidInput
from core.exchange.errors import ExchangeError
from core.exchange.models import Market, Ticker
from db.repositories.price_alerts import (
    ABOVE,
    BELOW,
    ActiveLevel,
    NewAlert,
    PriceAlert,
    PriceAlertRepository,
)
from services import notices
from services.alert_book import AlertBook
from services.licenses import LicenseService
from services.market import MarketService
from services.unit_of_work import UnitOfWork

__all__ = [
    "ABOVE",
    "BELOW",
    "AlertPage",
    "AlertSet",
    "CheckReport",
    "PriceAlert",
    "PriceAlertService",
]  # handlers read alerts through this module: they never import db

USAGE = (
    "Usage: /alert SYMBOL > PRICE or /alert SYMBOL < PRICE, or a move from the current "
    "price: /alert SYMBOL > 3% (e.g. /alert BTC > 70000, /alert ETH < 3%)."
)
LICENSED_CAP, UNLICENSED_CAP = 50, 5
PAGE_SIZE = 10
FIRE_BATCH = 500  # alerts fired per transaction
MAX_PCT = {ABOVE: Decimal(1000), BELOW: Decimal(99)}  # below 100 % a price would be ≤ 0
MAX_FACTOR = Decimal(100)  # an absolute level above 100× the price is surely a typo

_FORM = re.compile(
    r"\s*(?P<symbol>[A-Za-z0-9/:._-]+?)\s*(?P<op>[<>])=?\s*"
    r"(?P<value>[0-9][0-9,_]{0,15}(?:\.[0-9]{0,12})?|\.[0-9]{1,12})\s*(?P<pct>%?)\s*"
)


@dataclass(slots=True, frozen=True)
class AlertSet:
    """A new alert, with the market it watches and how far the price is from it."""

    alert: PriceAlert
    market: Market
    price: Decimal
    active: int
    cap: int


@dataclass(slots=True, frozen=True)
class AlertPage:
    """One page of a trader's active alerts, with each symbol's last price where known."""

    alerts: list[PriceAlert]
    prices: dict[str, Decimal]
    ticks: dict[str, Decimal]  # each symbol's tick size, to show levels as the market does
    page: int
    pages: int
    total: int
    cap: int
    first: int  # the list number of the page's first alert (1-based)


@dataclass(slots=True, frozen=True)
class CheckReport:
    symbols: int
    active: int
    fired: int
    pass_ms: float

    def __str__(self) -> str:
        return (
            f"price alerts fired: {self.fired} ({self.active} active, {self.symbols} symbols, "
            f"pass {self.pass_ms:.2f} ms)"
        )


class PriceAlertService:
    """Sets, lists, removes and fires price alerts on one market source."""

    def __init__(
        self,
        repo: PriceAlertRepository,
        work: UnitOfWork,
        market: MarketService,
        licenses: LicenseService,
        clock: Clock,
        source: str,
    ) -> None:
        self._repo = repo
        self._work = work
        self._market = market
        self._licenses = licenses
        self._clock = clock
        self.source = source
        self._book: AlertBook | None = None
        self._loading = asyncio.Lock()

    async def create(self, user_id: int, text: str) -> AlertSet:
        """Parse `SYMBOL > PRICE|PCT%` (or `<`), check it against the market, store it."""
        form = _FORM.fullmatch(text)
        if form is None:
            raise InvalidInput(USAGE)
        market = await self._market.resolve(self.source, form["symbol"])
        price = (await self._market.ticker(self.source, market.symbol)).last
        direction = ABOVE if form["op"] == ">" else BELOW
        threshold = _threshold(market, price, direction, form["value"], bool(form["pct"]))
        cap = await self._cap(user_id)
        book = await self._ready()
        async with self._work.begin() as work:
            active = await self._repo.count(user_id, work.tx)
            if active >= cap:
                raise InvalidInput(_cap_words(active, cap))
            new = NewAlert(user_id, self.source, market.symbol, direction, float(threshold),
                           float(price))  # fmt: skip
            alert = await self._repo.insert(new, self._clock.now(), work.tx)
        book.add(ActiveLevel(alert.id, alert.symbol, alert.direction, alert.threshold))
        return AlertSet(alert, market, price, active + 1, cap)

    async def page(self, user_id: int, page: int = 0) -> AlertPage:
        """A trader's active alerts, `PAGE_SIZE` a page, oldest first."""
        alerts = await self._repo.of_user(user_id)
        pages = max(1, -(-len(alerts) // PAGE_SIZE))
        page = min(max(page, 0), pages - 1)
        shown = alerts[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
        prices: dict[str, Decimal] = {}
        ticks: dict[str, Decimal] = {}
        if shown:
            try:
                tickers = await self._market.tickers(self.source)
                markets = await self._market.markets(self.source)
            except ExchangeError:
                tickers, markets = {}, {}  # the list is ours: shown without prices meanwhile
            prices = {a.symbol: t.last for a in shown if (t := tickers.get(a.symbol))}
            ticks = {a.symbol: m.tick_size for a in shown if (m := markets.get(a.symbol))}
        cap = await self._cap(user_id)
        first = page * PAGE_SIZE + 1
        return AlertPage(shown, prices, ticks, page, pages, len(alerts), cap, first)

    async def remove(self, user_id: int, alert_id: int) -> PriceAlert:
        """Delete one of the trader's active alerts."""
        book = await self._ready()
        removed = await self._repo.remove(user_id, alert_id)
        if removed is None:
            raise InvalidInput("That alert is no longer active (it fired or was removed).")
        book.discard([removed.id])
        return removed

    async def check(self) -> CheckReport:
        """Fire what the market source's current tickers reached (the scan-interval job)."""
        await self._ready()
        return await self.evaluate(await self._market.tickers(self.source))

    async def evaluate(self, tickers: Mapping[str, Ticker]) -> CheckReport:
        """One bulk pass over a ticker snapshot; each reached alert fires once: marked fired
        and its notice queued in one transaction."""
        book = await self._ready()
        start = time.perf_counter()
        prices = {symbol: float(t.last) for symbol, t in tickers.items() if t.last > 0}
        crossings = book.due(prices)
        pass_ms = (time.perf_counter() - start) * 1000
        crossed = {i: c.price for c in crossings for i in c.alert_ids}
        ids = list(crossed)
        for at in range(0, len(ids), FIRE_BATCH):
            # A crash tick can reach thousands: fired in batches, other writers get turns.
            batch = {i: crossed[i] for i in ids[at : at + FIRE_BATCH]}
            async with self._work.begin() as work:
                due = await self._repo.fire(batch, self._clock.now(), work.tx)
                await work.notify(
                    [notices.price_alert(d.alert, d.chat_id, tickers[d.alert.symbol].last)
                     for d in due]
                )  # fmt: skip
            book.discard(batch)
        return CheckReport(len(prices), len(book), len(crossed), pass_ms)

    async def _ready(self) -> AlertBook:
        """The index, loaded from the store on first use (once, even if asked concurrently)."""
        if self._book is not None:
            return self._book
        async with self._loading:
            if self._book is None:
                self._book = AlertBook.of(await self._repo.levels(self.source))
        return self._book

    async def _cap(self, user_id: int) -> int:
        licensed = (await self._licenses.state(user_id)).can_open_positions
        return LICENSED_CAP if licensed else UNLICENSED_CAP


def _threshold(market: Market, price: Decimal, direction: str, value: str, pct: bool) -> Decimal:
    """The level to watch, on the market's tick, refused when the price is already there."""
    try:
        number = Decimal(value.replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise InvalidInput(USAGE) from None
    name, now = market.base, _show(price, market)
    if pct:
        limit = MAX_PCT[direction]
        if not Decimal("0.01") <= number <= limit:
            raise InvalidInput(
                f"A move must be from 0.01 % to {limit:f} % {direction} the price. {USAGE}"
            )
        sign = 1 if direction == ABOVE else -1
        level = market.round_price(price * (1 + sign * number / 100))
        if level == price or level <= 0:
            raise InvalidInput(
                f"{number:f} % of {name}'s price ({now}) rounds to nothing on its "
                f"{market.tick_size:f} tick; ask for a bigger move."
            )
        return level
    level = market.round_price(number) if number >= market.tick_size else number
    if level <= 0:
        raise InvalidInput(f"The price must be above 0. {USAGE}")
    if direction == ABOVE and level <= price:
        raise InvalidInput(
            f"{name} is already above {_show(level, market)} (last {now}). "
            f"/alert {name} < {value} tells you when it falls back there."
        )
    if direction == BELOW and level >= price:
        raise InvalidInput(
            f"{name} is already below {_show(level, market)} (last {now}). "
            f"/alert {name} > {value} tells you when it climbs back there."
        )
    if level > price * MAX_FACTOR:
        raise InvalidInput(
            f"{_show(level, market)} is over 100× {name}'s price ({now}): an alert above "
            f"must be between {now} and {_show(price * MAX_FACTOR, market)}."
        )
    return level


def _show(value: Decimal, market: Market) -> str:
    """A price on the market's tick, thousands separated: 70,000.0."""
    return format(value.quantize(market.tick_size.normalize()), ",f")


def _cap_words(active: int, cap: int) -> str:
    more = (
        f" With a licence you can keep {LICENSED_CAP} (/license)." if cap == UNLICENSED_CAP else ""
    )
    return (
        f"You already have {active} active alerts, the most you can keep.{more} "
        "Remove one in /alerts first."
    )
