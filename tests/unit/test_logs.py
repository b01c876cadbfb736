"""A job cancelled by shutdown is not reported as an error; real job failures still are."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.logs import quiet_shutdown_cancellations


def _raise(error: BaseException) -> None:
    logging.getLogger("apscheduler.executors.default").error(
        "Error running job %s", "j1", exc_info=(type(error), error, None)
    )


def test_cancellation_at_shutdown_is_dropped_failures_are_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    quiet_shutdown_cancellations()
    quiet_shutdown_cancellations()  # installing twice adds one filter
    with caplog.at_level(logging.ERROR, logger="apscheduler.executors.default"):
        _raise(asyncio.CancelledError())
        _raise(RuntimeError("the job really failed"))
    assert [r.exc_info[1].args for r in caplog.records if r.exc_info] == [
        ("the job really failed",)
    ]
    assert len(logging.getLogger("apscheduler.executors.default").filters) == 1
