"""How a position is cut into ladder parts: whole lots, nothing more than the shares ask,
and what one part rounds off carried to the next."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.ladder_rungs import part_sizes, rungs_of

D = Decimal
FULL = rungs_of("2:50,4:30,8:20")


@pytest.mark.parametrize(
    ("qty", "lot", "rungs", "sizes"),
    [
        (D("1"), D("0.001"), FULL, [D("0.5"), D("0.3"), D("0.2")]),
        # Each floored alone, 0.006 and 0.004 were nothing: 0.01 of the position had no TP.
        (D("0.02"), D("0.01"), FULL, [D("0.01"), D("0.01"), D("0")]),
        (D("0.073"), D("0.001"), rungs_of("2:50,4:50"), [D("0.037"), D("0.036")]),
        (D("0.001"), D("0.001"), FULL, [D("0.001"), D("0"), D("0")]),
        # Shares under 100: the rest rides on the stop loss, never more than asked.
        (D("0.05"), D("0.01"), rungs_of("2:30,4:30"), [D("0.02"), D("0.01")]),
    ],
)
def test_parts_are_whole_lots_of_the_running_share(
    qty: Decimal, lot: Decimal, rungs: list[tuple[Decimal, Decimal]], sizes: list[Decimal]
) -> None:
    found = part_sizes(qty, rungs, lot)
    assert found == sizes
    assert sum(found) <= qty
