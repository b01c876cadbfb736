"""Parsing what traders type, and the arithmetic of an order card."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidInput
from core.exchange.models import Market, PositionSide
from services.amounts import (
    MAX_USDT,
    AmountRange,
    opening_fee,
    parse_leverage,
    parse_number,
    parse_percent,
    parse_usdt,
    protective_levels,
    realised_pnl,
    taker_fee,
    usdt_range,
)

BTC = Market(
    symbol="BTC/USDT:USDT",
    exchange_id="BTCUSDT",
    base="BTC",
    quote="USDT",
    settle="USDT",
    tick_size=Decimal("0.1"),
    lot_size=Decimal("0.001"),
    min_qty=Decimal("0.001"),
    min_notional=Decimal("5"),
    max_leverage=100,
)
DOGE = Market(
    symbol="DOGE/USDT:USDT",
    exchange_id="DOGEUSDT",
    base="DOGE",
    quote="USDT",
    settle="USDT",
    tick_size=Decimal("0.00001"),
    lot_size=Decimal("1"),
    min_qty=Decimal("1"),
    min_notional=Decimal("5"),
    max_leverage=50,
)
RANGE = AmountRange(Decimal("10"), Decimal("5000"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("50", "50"), ("50.5", "50.5"), (" 50usdt ", "50"), ("75 USDT", "75"), ("+20", "20")],
)
def test_usdt_amounts_in_range_are_accepted(text: str, expected: str) -> None:
    assert parse_usdt(text, RANGE) == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("nan", "must be a finite number"),
        ("NaN", "must be a finite number"),
        ("sNaN", "must be a finite number"),
        ("inf", "must be a finite number"),
        ("-Infinity", "must be a finite number"),
        ("-5", "must be positive"),
        ("0", "must be positive"),
        ("0.000", "must be positive"),
        ("1e3", "must be a plain number"),
        ("1_000", "must be a plain number"),
        ("1,000", "must be a plain number"),
        ("٥٠", "must be a plain number"),  # Arabic-Indic digits: not what a trader means
        ("fifty", "must be a plain number"),
        ("", "must be a plain number"),
        ("12.123456789", "more than 8 decimals"),
        ("1" * 30, "too many digits"),
        ("100000001", "not a realistic amount"),
        ("9.99", "below the minimum order"),
        ("5000.01", "more than your available margin allows"),
    ],
)
def test_bad_usdt_amounts_say_why_and_the_range(text: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_usdt(text, RANGE)
    assert reason in str(refused.value)
    if reason != "not a realistic amount":
        assert "(accepted: 10.00 to 5,000.00 USDT)" in str(refused.value)


def test_no_margin_left_is_its_own_refusal() -> None:
    with pytest.raises(InvalidInput, match="Not enough margin"):
        parse_usdt("20", AmountRange(Decimal("62.5"), Decimal("30")))


@given(st.text(max_size=40))
def test_any_text_is_a_number_in_range_or_a_readable_refusal(text: str) -> None:
    result = _parsed(text)
    if isinstance(result, str):
        assert result.endswith(").") or result.endswith("USDT.")
        assert len(result) < 300
    else:
        assert RANGE.minimum <= result <= RANGE.maximum


def _parsed(text: str) -> Decimal | str:
    try:
        return parse_usdt(text, RANGE)
    except InvalidInput as refused:
        return str(refused)


@given(st.decimals(min_value=Decimal("0.00000001"), max_value=MAX_USDT, places=8))
def test_plain_decimals_round_trip(value: Decimal) -> None:
    assert parse_number(f"{value:f}", "The amount", "anything") == value


def test_range_runs_from_one_valid_quantity_to_margin_times_leverage() -> None:
    allowed = usdt_range(BTC, Decimal("60000"), Decimal("1000"), 10)
    assert allowed == AmountRange(Decimal("60.00"), Decimal("10000.00"))
    # A cheap coin: the minimum notional, not the minimum quantity, sets the floor.
    cheap = usdt_range(DOGE, Decimal("0.12"), Decimal("-3"), 5)
    assert cheap == AmountRange(Decimal("5.04"), Decimal("0.00"))  # 42 DOGE; nothing free


@given(
    price=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("200000"), places=3),
    available=st.decimals(min_value=Decimal(0), max_value=Decimal("100000"), places=2),
    leverage=st.integers(1, 100),
)
def test_every_amount_in_range_buys_a_valid_quantity(
    price: Decimal, available: Decimal, leverage: int
) -> None:
    for market in (BTC, DOGE):
        allowed = usdt_range(market, price, available, leverage)
        qty = market.round_qty(allowed.minimum / price)
        assert qty >= market.min_qty and qty * price >= market.min_notional
        assert allowed.maximum <= max(available * leverage, Decimal(0))


@pytest.mark.parametrize(("text", "expected"), [("10", 10), ("1", 1), ("25x", 25), ("100", 100)])
def test_leverage_is_a_whole_number_up_to_the_market_max(text: str, expected: int) -> None:
    assert parse_leverage(text, 100) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0", "out of range: a whole number from 1 to 50"),
        ("51", "out of range: a whole number from 1 to 50"),
        ("99999999999999", "out of range: a whole number from 1 to 50"),
        ("2.5", "must be a whole number from 1 to 50"),
        ("-3", "must be a whole number from 1 to 50"),
        ("ten", "must be a whole number from 1 to 50"),
        ("nan", "must be a whole number from 1 to 50"),
        ("٥", "must be a whole number from 1 to 50"),
    ],
)
def test_bad_leverage_says_the_range(text: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        parse_leverage(text, 50)


@pytest.mark.parametrize(
    ("text", "expected"), [(None, "100"), ("50", "50"), ("25%", "25"), ("1", "1"), ("33.5", "33.5")]
)
def test_percent_defaults_to_all(text: str | None, expected: str) -> None:
    assert parse_percent(text) == Decimal(expected)


@pytest.mark.parametrize("text", ["0", "0.5", "100.01", "150", "-10", "nan", "half", "1e2"])
def test_bad_percent_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="The percentage must be"):
        parse_percent(text)


def test_levels_sit_on_the_winning_and_losing_sides_on_the_tick() -> None:
    price = Decimal("60000.05")
    take, stop = protective_levels(PositionSide.LONG, price, Decimal(3), Decimal("1.5"), BTC)
    assert (take, stop) == (Decimal("61800.1"), Decimal("59100.0"))
    take, stop = protective_levels(PositionSide.SHORT, price, Decimal(3), Decimal("1.5"), BTC)
    assert (take, stop) == (Decimal("58200.0"), Decimal("60900.1"))


def test_zero_or_impossible_percentages_mean_no_level() -> None:
    price = Decimal("100")
    assert protective_levels(PositionSide.LONG, price, Decimal(0), Decimal(0), BTC) == (
        None,
        None,
    )
    assert protective_levels(PositionSide.SHORT, price, Decimal(150), Decimal(1), BTC)[0] is None


def test_fee_and_pnl() -> None:
    assert taker_fee(Decimal("1000")) == Decimal("0.55000000")
    long = realised_pnl(PositionSide.LONG, Decimal(100), Decimal(110), Decimal(2), Decimal("0.1"))
    short = realised_pnl(PositionSide.SHORT, Decimal(100), Decimal(110), Decimal(2), Decimal("0.1"))
    assert (long, short) == (Decimal("19.9"), Decimal("-20.1"))


def test_a_close_carries_its_share_of_the_opening_fee() -> None:
    d = Decimal
    assert opening_fee(d("0.66"), d("0.02"), d("0.02"), d("60000")) == d("0.66")  # all of it
    assert opening_fee(d("0.66"), d("0.02"), d("0.01"), d("60000")) == d("0.33")  # half
    third = opening_fee(d("1"), d("0.03"), d("0.01"), d("1"))
    assert third == d("0.3333333333")  # pro rata, to 10 decimals
    # opened outside Tradewind: the taker fee at the entry price
    assert opening_fee(None, None, d("0.01"), d("60000")) == taker_fee(d("600")) == d("0.33")
    gross_less_both = realised_pnl(
        PositionSide.LONG, d("60000"), d("61000"), d("0.01"), d("0.6655")
    )
    assert gross_less_both == d("9.3345")
