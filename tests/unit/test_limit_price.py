"""The price of a limit order: its forms, the tick, the bounds and the wrong side."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import InvalidInput
from core.exchange.models import Market, PositionSide
from services.limit_price import is_price_form, limit_level, parse_limit_price

BTC = Market("BTC/USDT:USDT", "BTCUSDT", "BTC", "USDT", "USDT", Decimal("0.1"),
             Decimal("0.001"), Decimal("0.001"), Decimal(5), 100)  # fmt: skip
COARSE = Market("XYZ/USDT:USDT", "XYZUSDT", "XYZ", "USDT", "USDT", Decimal("0.01"),
                Decimal(1), Decimal(1), Decimal(5), 20)  # fmt: skip
LONG, SHORT = PositionSide.LONG, PositionSide.SHORT


@pytest.mark.parametrize(
    ("text", "value", "relative"),
    [
        ("64000", Decimal(64000), False),
        ("64,000.5", Decimal("64000.5"), False),
        ("64k", Decimal(64000), False),
        ("64.25K", Decimal(64250), False),
        ("1.2m", Decimal(1_200_000), False),
        (".5", Decimal("0.5"), False),
        ("-1%", Decimal(-1), True),
        ("+0.5%", Decimal("0.5"), True),
    ],
)
def test_forms(text: str, value: Decimal, relative: bool) -> None:
    parsed = parse_limit_price(text)
    assert (parsed.value, parsed.relative) == (value, relative)
    assert is_price_form(text)


@pytest.mark.parametrize("text", ["abc", "1e5", "-64000", "64kk", "--1%", "1%%", "", "0x10"])
def test_malformed(text: str) -> None:
    assert not is_price_form(text)
    with pytest.raises(InvalidInput):
        parse_limit_price(text)


def test_a_percentage_needs_a_direction() -> None:
    with pytest.raises(InvalidInput, match=r"Say which way 2% goes: -2% .* or \+2%"):
        parse_limit_price("2%")


def test_levels_round_to_the_nearest_tick_and_say_the_distance() -> None:
    level = limit_level(LONG, parse_limit_price("-1%"), Decimal("64123.4"), BTC)
    assert (level.price, level.distance_pct, level.takes) == (
        Decimal("63482.2"),
        Decimal("-1.00"),
        False,
    )
    assert limit_level(LONG, parse_limit_price("63999.97"), Decimal(64000), BTC).price == Decimal(
        "64000.0"
    )


def test_the_wrong_side_is_marked_as_taking() -> None:
    assert limit_level(LONG, parse_limit_price("+0.5%"), Decimal(64000), BTC).takes
    assert limit_level(LONG, parse_limit_price("64000"), Decimal(64000), BTC).takes
    assert not limit_level(SHORT, parse_limit_price("+0.5%"), Decimal(64000), BTC).takes
    assert limit_level(SHORT, parse_limit_price("-0.5%"), Decimal(64000), BTC).takes


def test_a_move_smaller_than_a_tick_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"moves the price less than one tick \(0.01\)"):
        limit_level(LONG, parse_limit_price("-0.1%"), Decimal("1.00"), COARSE)  # 0.001: no tick
    assert limit_level(LONG, parse_limit_price("-1%"), Decimal("1.00"), COARSE).price == Decimal(
        "0.99"
    )


def test_prices_that_round_to_nothing_or_sit_too_far_are_refused() -> None:
    with pytest.raises(InvalidInput, match=r"0.04 rounds to 0 on the BTC/USDT:USDT tick of 0.1"):
        limit_level(LONG, parse_limit_price("0.04"), Decimal(64000), BTC)
    with pytest.raises(InvalidInput, match=r"within 50 % of it \(32,000.0 to 96,000.0\)"):
        limit_level(LONG, parse_limit_price("100k"), Decimal(64000), BTC)
    with pytest.raises(InvalidInput, match=r"from 0.01 % to 50 %"):
        limit_level(SHORT, parse_limit_price("+50.5%"), Decimal(64000), BTC)
