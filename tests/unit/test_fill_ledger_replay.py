"""Replaying one symbol's fills into closes: entries, exits, both legs' fees."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from core.exchange.models import Fill, PositionSide, Side
from services.fill_ledger_replay import replay

BTC = "BTC/USDT:USDT"
_ids = itertools.count(1)
_start = datetime(2026, 3, 1, tzinfo=UTC)


def fill(
    order: str, side: Side, qty: str, price: str, fee: str, *, reduce: bool | None = None
) -> Fill:
    n = next(_ids)
    return Fill(
        f"e{n}", order, None, BTC, side, D(price), D(qty), D(fee), "USDT",
        _start + timedelta(seconds=n), reduce_only=reduce,
    )  # fmt: skip


def test_entry_and_exit_are_volume_weighted_and_fees_are_both_legs() -> None:
    closes = replay(
        [
            fill("open1", Side.BUY, "1", "100", "0.1"),
            fill("open2", Side.BUY, "3", "104", "0.3"),
            fill("close", Side.SELL, "2", "110", "0.2"),
            fill("close", Side.SELL, "2", "112", "0.2"),
        ]
    )

    [close] = closes
    assert (close.side, close.qty) == (PositionSide.LONG, D(4))
    assert (close.entry_price, close.exit_price) == (D(103), D(111))
    assert (close.open_fee, close.close_fee, close.fee) == (D("0.4"), D("0.4"), D("0.8"))


def test_a_partial_close_carries_its_share_of_the_opening_fee() -> None:
    first, second = replay(
        [
            fill("open", Side.SELL, "4", "50", "0.4"),
            fill("tp", Side.BUY, "1", "45", "0.05"),
            fill("sl", Side.BUY, "3", "55", "0.15"),
        ]
    )

    assert (first.side, first.qty, first.open_fee, first.exit_price) == (
        PositionSide.SHORT, D(1), D("0.1"), D(45),
    )  # fmt: skip
    assert (second.qty, second.open_fee, second.close_fee) == (D(3), D("0.3"), D("0.15"))


def test_a_flip_closes_what_there_was_and_opens_the_rest() -> None:
    closes = replay(
        [
            fill("open", Side.BUY, "1", "100", "0.1"),
            fill("flip", Side.SELL, "3", "90", "0.3"),
            fill("back", Side.BUY, "2", "80", "0.2"),
        ]
    )

    flip, back = closes
    assert (flip.side, flip.qty, flip.close_fee) == (PositionSide.LONG, D(1), D("0.1"))
    assert (back.side, back.qty, back.entry_price) == (PositionSide.SHORT, D(2), D(90))
    assert back.open_fee == D("0.2")  # two thirds of the flipping fill's fee opened the short


def test_a_close_of_a_position_opened_before_the_ledger_has_an_unknown_entry() -> None:
    [close] = replay([fill("sl", Side.SELL, "2", "95", "0.1", reduce=True)])

    assert (close.side, close.qty, close.known_entry) == (PositionSide.LONG, D(2), False)
    assert close.exit_price == D(95) and close.open_fee == 0


def test_the_venues_realised_pnl_is_summed_over_a_close() -> None:
    opening = fill("open", Side.BUY, "2", "100", "0.1")
    closing = [
        Fill("x1", "c", None, BTC, Side.SELL, D(110), D(1), D("0.05"), "USDT", _start, D(10)),
        Fill("x2", "c", None, BTC, Side.SELL, D(120), D(1), D("0.05"), "USDT", _start, D(20)),
    ]
    [close] = replay([opening, *closing])

    assert close.realised == D(30)
