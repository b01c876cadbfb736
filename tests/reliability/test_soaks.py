"""Each soak at its tiniest: the scripts still start the bot, hurt it and judge it.

The figures in docs/RELIABILITY.md come from the quick and full runs; here two kills and a few
seconds of faults prove the machinery (processes, pause points, control endpoints, checks)."""

from __future__ import annotations

import pytest

from scripts import soak_crash, soak_faults

pytestmark = pytest.mark.e2e


async def test_crash_soak_kills_at_an_order_and_a_payment_and_finds_nothing_lost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = await soak_crash.soak(2, 1, 3, settle_s=2.0, targets=["order", "payment"])
    out = capsys.readouterr().out
    assert "Crash soak: 2 SIGKILLs" in out, out
    assert "| order | 1 | 0 |" in out and "| payment | 1 | 0 |" in out, out
    assert "FAILED" not in out and code == 0, out


async def test_fault_soak_answers_every_command_and_duplicates_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = await soak_faults.soak(15, 3, 0.25, 5)
    out = capsys.readouterr().out
    assert "| every command answered | ok |" in out, out
    assert "| every intent matches at most one exchange order | ok |" in out, out
    assert "FAILED" not in out and code == 0, out
