"""Each benchmark's workload, at a tiny size, still does the work its figure claims.

No timing is asserted: a benchmark whose workload silently stopped exercising its path (no
candidate confirmed on candles, no trade closed, no trade log written under the admin
screens, no listing in a registry sync) would publish a fast figure for work not done.
"""

from __future__ import annotations

import re

from scripts import (
    bench_admin,
    bench_autotrade,
    bench_fanout,
    bench_licensing,
    bench_manage,
    bench_scan,
    bench_trader,
)
from scripts._results import Row
from tests.exchange_server import ExchangeServer


def _all_did_work(rows: list[Row]) -> None:
    assert rows
    for row in rows:
        assert row.did_work, f"{row.workload}: {row.work}"
        assert row.verdict() != "DID NOT DO THE WORK"


async def test_scan_confirms_candidates_and_sync_sees_changes() -> None:
    async with ExchangeServer(symbols=80, seed=1, moving=True) as server:
        ours = await bench_scan.child("tradewind", server.base_url, reps=2, top=10)
        top = min(c for c, _, _ in ours["funnel"])
        theirs = await bench_scan.child("batched", server.base_url, reps=1, top=top)
    assert len(ours["funnel"]) == 2
    for candidates, checked, _ in ours["funnel"]:
        assert candidates >= 1 and checked >= 1  # candles were fetched and judged
    assert sum(confirmed for _, _, confirmed in ours["funnel"]) >= 1
    for listed, delisted, written in ours["changes"]:
        assert listed >= 1 and delisted >= 1 and written > listed + delisted
    # The baseline confirmed as many candidates as Tradewind did.
    assert [c for c, _, _ in theirs["funnel"]] == [top]
    results = {("tradewind", 80): ours, ("batched", 80): theirs}
    _all_did_work(bench_scan.rows_of(results, [80], 0))


async def test_trader_load_closes_trades_on_a_history() -> None:
    mix = (("/pnl", 0.3), ("/balance", 0.2), (bench_trader.TRADE, 0.5))
    rows = await bench_trader.main(
        6, 2.5, latency_ms=0, budget=400, heavy=1, mix=mix, think_s=(0.02, 0.1)
    )
    _all_did_work(rows)
    closed = re.search(r"(\d+) trades closed during the load", rows[0].work)
    assert closed is not None and int(closed.group(1)) >= 1


async def test_admin_screens_are_timed_while_trade_logs_are_written() -> None:
    rows = await bench_admin.run(users=200, trades=3_000, runs=3, inserts=10)
    _all_did_work(rows)
    written = re.match(r"(\d+) trade logs written during the timings", rows[0].work)
    assert written is not None and int(written.group(1)) >= 1


async def test_autotrade_places_every_order_once() -> None:
    rows = await bench_autotrade.main(users=4, latency_ms=0, rate=100)
    _all_did_work(rows)


async def test_licensing_reminds_redeems_and_pays() -> None:
    _, rows = await bench_licensing.run(1_100)
    _all_did_work(rows)


async def test_fanout_delivers_every_notice_once() -> None:
    rows = await bench_fanout.main(3, [bench_fanout.FREE])
    _all_did_work(rows)


def test_alerts_and_trailing_stops_are_due_moved_and_fired() -> None:
    _, rows, counts = bench_manage.run(3_000, 600)
    _all_did_work(rows)
    assert counts["disagreements"] == 0 and counts["fired"] > 0
