"""A take-profit ladder as a trader writes it: `2%:50,4%:30,8%:20` (take half the position
2 % in profit, 30 % of it at 4 %, 20 % at 8 %). Up to three parts, each 0.1–500 % from the
entry and 1–100 % of the position, the shares summing to at most 100 (what is left rides on
the stop loss); `off` removes the ladder."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from core.errors import InvalidInput

MAX_RUNGS = 3
USAGE = (
    "tp_ladder is up to 3 parts PCT%:SHARE, the shares summing to at most 100, or off, "
    "e.g. /set tp_ladder 2%:50,4%:30,8%:20."
)
_PART = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*%?\s*:\s*([0-9]+(?:\.[0-9]+)?)\s*%?\s*")


def parse_ladder(text: str) -> str | None:
    """The ladder in its stored form (`2:50,4:30,8:20`), None for off; refused with the rule."""
    if text.strip().lower() in {"off", "none", "-", "clear", "0"}:
        return None
    parts = text.split(",")
    if not 1 <= len(parts) <= MAX_RUNGS:
        raise InvalidInput(USAGE)
    rungs = []
    for part in parts:
        form = _PART.fullmatch(part)
        if form is None:
            raise InvalidInput(USAGE)
        try:
            pct, share = Decimal(form[1]), Decimal(form[2])
        except InvalidOperation:
            raise InvalidInput(USAGE) from None
        if not Decimal("0.1") <= pct <= 500 or not 1 <= share <= 100:
            raise InvalidInput(
                f"Each part is 0.1–500 % from the entry and 1–100 % of the position. {USAGE}"
            )
        rungs.append((pct, share))
    total = sum(share for _, share in rungs)
    if total > 100:
        raise InvalidInput(f"The shares add up to {total:f} %, over 100. {USAGE}")
    if len({pct for pct, _ in rungs}) != len(rungs):
        raise InvalidInput(f"Two parts at the same distance. {USAGE}")
    rungs.sort()
    return ",".join(f"{pct.normalize():f}:{share.normalize():f}" for pct, share in rungs)


def rungs_of(stored: str) -> list[tuple[Decimal, Decimal]]:
    """The stored ladder as (percent from entry, share of the position) pairs, nearest first."""
    pairs = (part.split(":") for part in stored.split(",") if part)
    return [(Decimal(pct), Decimal(share)) for pct, share in pairs]


def part_sizes(qty: Decimal, rungs: list[tuple[Decimal, Decimal]], lot: Decimal) -> list[Decimal]:
    """Each rung's size in whole lots: the shares are summed from the nearest rung and each
    running total rounded to the nearest lot, so what one rung rounds off the next one takes
    (0.02 ETH, lot 0.01, 50/30/20 → 0.01, 0.01, 0) and the parts never add up to more than
    the shares ask (nor than the position). A rung of 0 lots is not placed."""
    sizes: list[Decimal] = []
    placed, running = Decimal(0), Decimal(0)
    for _, share in rungs:
        running += share
        lots = (qty * running / 100 / lot).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        total = min(lots * lot, qty)
        sizes.append(total - placed)
        placed = total
    return sizes


def describe(stored: str | None) -> str:
    """`2%:50, 4%:30, 8%:20`, or off."""
    if not stored:
        return "off"
    return ", ".join(f"{pct:f}%:{share:f}" for pct, share in rungs_of(stored))
