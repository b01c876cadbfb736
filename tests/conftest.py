"""Fixtures shared by every test: a real SQLite store in a temporary directory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.metrics import Metrics
from db.store import Store

# python-telegram-bot 22 warns on every RetryAfter unless timedelta values are opted into;
# Tradewind reads retry_after as a timedelta everywhere.
os.environ.setdefault("PTB_TIMEDELTA", "1")


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def store(tmp_path: Path, metrics: Metrics) -> AsyncIterator[Store]:
    async with Store(tmp_path / "tradewind.db", observer=metrics) as opened:
        yield opened
