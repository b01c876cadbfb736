"""Fixtures shared by every test: a real SQLite store in a temporary directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.metrics import Metrics
from db.store import Store


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def store(tmp_path: Path, metrics: Metrics) -> AsyncIterator[Store]:
    async with Store(tmp_path / "tradewind.db", observer=metrics) as opened:
        yield opened
