"""Whole-number arguments of commands, refused in one wording everywhere.

The handler checks the form (a whole number, not negative) and names the argument as the
usage line spells it; the service checks the range and names it in its own words
("Days must be a whole number from 1 to 3,650."). A refusal is an `InvalidInput`, answered
by `handlers.base.measured`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.errors import InvalidInput
from services.limit_price import is_price_form

_INTEGER = re.compile(r"[+-]?[0-9]{1,12}")
_ID = re.compile(r"[0-9]{1,18}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def looks_numeric(text: str) -> bool:
    """Whether the text is written as a number (so a wrong one is a bad value, not a word)."""
    return _NUMBER.fullmatch(text) is not None


def whole_number(text: str, arg: str, example: int, usage: str) -> int:
    """`text` as a whole number ≥ 0, or a refusal naming `arg` (e.g. DAYS)."""
    if _INTEGER.fullmatch(text) is None:
        raise InvalidInput(f"{arg} must be a whole number, e.g. {example}. {usage}")
    value = int(text)
    if value < 0:
        raise InvalidInput(f"{arg} must be positive, e.g. {example}. {usage}")
    return value


def count_in(text: str, high: int) -> int | None:
    """A count from 1 to `high`, or None: a list size, where the usage line says it all."""
    if _INTEGER.fullmatch(text) is None or not 1 <= int(text) <= high:
        return None
    return int(text)


def is_id(text: str) -> bool:
    """Whether `text` is an id a button or command may carry: ASCII digits only (`²` passes
    `str.isdigit` but not `int`) and short enough for SQLite's 64-bit integers."""
    return _ID.fullmatch(text) is not None


def split_limit_price(args: Sequence[str], usage: str) -> tuple[list[str], str | None]:
    """The arguments before `@`, and the limit price after it (None: a market order).

    `@ 64000`, `@64k`, `5@64000` and `@ -1 %` all read the same; a price in another form,
    a second `@`, or an `@` with nothing after it is refused naming PRICE.
    """
    text = " ".join(args)
    if "@" not in text:
        return list(args), None
    before, _, after = text.partition("@")
    price = "".join(after.split())
    if not price:
        raise InvalidInput(f"PRICE is missing after @, e.g. @ 64000, @64k or @-1%. {usage}")
    if "@" in price or not is_price_form(price):
        raise InvalidInput(
            f"PRICE must be a price like 64000 or 64k, or a move from the last price like "
            f"-1% or +0.5%. {usage}"
        )
    return before.split(), price
