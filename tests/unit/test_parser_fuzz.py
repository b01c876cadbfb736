"""Every argument parser and callback-data decoder on arbitrary text: a valid value in range,
or a refusal in words (`InvalidInput` / None), never another exception.

The fixed seed and count keep the normal suite quick; `TRADEWIND_FUZZ_EXAMPLES=100000` runs
the full count (see docs/RELIABILITY.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

from hypothesis import given, seed, settings
from hypothesis import strategies as st

from core.errors import InvalidInput
from handlers.args import count_in, is_id, looks_numeric, whole_number
from handlers.history import _page_wanted
from handlers.portfolio import _page_press
from services.amounts import (
    AmountRange,
    parse_leverage,
    parse_number,
    parse_percent,
    parse_usdt,
)
from services.payments import _parse as parse_payment
from services.signals import parse_score

SETTINGS = settings(
    max_examples=int(os.environ.get("TRADEWIND_FUZZ_EXAMPLES", "0") or 0) or 300,
    deadline=None,
    database=None,
)
_NUMBERISH = st.from_regex(r"[+-]?[0-9٣²①１]{0,25}([.,][0-9]{0,12})?([eE][+-]?[0-9]{1,6})?%?x?")
TEXT = st.one_of(st.text(max_size=40), _NUMBERISH, st.sampled_from(["nan", "inf", "-0", "1e999"]))
ALLOWED = AmountRange(Decimal("5"), Decimal("1000"))
T = TypeVar("T")
PARTS = st.lists(st.one_of(st.text(max_size=12), _NUMBERISH), max_size=6)


def _refused_or(check: Callable[[T], bool], parse: Callable[[str], T], text: str) -> None:
    """`parse(text)` is refused in words, or gives a value `check` accepts."""
    try:
        value = parse(text)
    except InvalidInput as err:
        refusal = str(err)
    else:
        assert check(value), (text, value)
        return
    assert refusal, text  # a refusal says what was wrong


@seed(17)
@SETTINGS
@given(TEXT)
def test_amount_leverage_percent_and_number_parsers(text: str) -> None:
    _refused_or(
        lambda v: ALLOWED.minimum <= v <= ALLOWED.maximum, lambda t: parse_usdt(t, ALLOWED), text
    )
    _refused_or(lambda v: 1 <= v <= 125, lambda t: parse_leverage(t, 125), text)
    _refused_or(lambda v: 1 <= v <= 100, parse_percent, text)
    _refused_or(
        lambda v: v.is_finite(),
        lambda t: parse_number(t, "X", "any"),
        text,
    )
    _refused_or(lambda v: 0 <= v <= 1, parse_score, text)
    _refused_or(lambda v: v >= 0, lambda t: whole_number(t, "DAYS", 30, "usage"), text)


@seed(17)
@SETTINGS
@given(TEXT)
def test_ids_and_counts(text: str) -> None:
    if is_id(text):
        assert 0 <= int(text) < 2**63 and text.isascii()
    count = count_in(text, 50)
    assert count is None or 1 <= count <= 50
    looks_numeric(text)  # a plain yes or no, whatever the text


@seed(17)
@SETTINGS
@given(PARTS)
def test_callback_decoders(parts: list[str]) -> None:
    wanted = _page_wanted(parts)
    assert wanted is None or all(0 <= n < 10**10 for n in wanted)
    press = _page_press(["pr", *parts])
    assert press is None or (0 <= press[0] < 2**63 and 0 <= press[1] < 2**63)
    order = parse_payment(":".join(["lic", *parts]))
    assert order is None or all(0 <= n < 2**63 for n in (order.days, order.amount, order.user_id))
