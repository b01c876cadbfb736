"""A failing job logs one line per run and its traceback once per distinct error per hour."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest

from bot.jobs import timed_job
from core.metrics import Metrics
from handlers.context import TradewindContext
from tests.fakes.clock import FakeClock

NO_CONTEXT = cast(TradewindContext, None)


class Garbage:
    """A job body failing like an exchange answering garbage; `kind` picks the error."""

    def __init__(self) -> None:
        self.kind = "parse"
        self.runs = 0

    async def __call__(self) -> Any:
        self.runs += 1
        if self.kind == "parse":
            raise ValueError(f"unexpected body <html>{self.runs}</html>\nline two")
        raise KeyError("result")


def _failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bot.jobs" and r.levelno == logging.ERROR]


async def test_repeated_failure_logs_one_line_each_and_one_traceback_an_hour(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, body, metrics = FakeClock(), Garbage(), Metrics()
    run = timed_job("market_scan", body, metrics, clock)
    with caplog.at_level(logging.ERROR, logger="bot.jobs"):
        for _ in range(36):
            await run(NO_CONTEXT)
            clock.advance(1)
    records = _failures(caplog)
    assert len(records) == 36
    assert [r for r in records if r.exc_info] == records[:1]
    first, later = records[0].getMessage(), records[1].getMessage()
    assert first == "job market_scan failed: ValueError: unexpected body <html>1</html> line two"
    assert later.startswith("job market_scan failed: ValueError: unexpected body <html>2</html>")
    assert "traceback was logged earlier" in later and "\n" not in later

    caplog.clear()
    body.kind = "key"  # a different error shows its own traceback at once
    await run(NO_CONTEXT)
    await run(NO_CONTEXT)
    body.kind = "parse"
    await run(NO_CONTEXT)  # still within the hour of the first one
    clock.advance(3600)
    await run(NO_CONTEXT)  # an hour later it is shown again
    assert [bool(r.exc_info) for r in _failures(caplog)] == [True, False, False, True]
    assert "KeyError: 'result'" in _failures(caplog)[0].getMessage()


async def test_a_succeeding_job_logs_no_error(caplog: pytest.LogCaptureFixture) -> None:
    async def fine() -> str:
        return "ok"

    with caplog.at_level(logging.DEBUG, logger="bot.jobs"):
        await timed_job("presence_flush", fine, Metrics(), FakeClock())(NO_CONTEXT)
    assert not _failures(caplog)
    assert "job presence_flush" in caplog.text
