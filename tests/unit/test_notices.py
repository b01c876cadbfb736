"""Every message the bot sends unprompted, word for word, with its kind and dedup key."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.exchange.models import Side
from core.lifecycle import ExecutionStatus
from db.repositories.broadcasts import Recipient
from db.repositories.executions import Candidate, ExecutionRecord
from db.repositories.intents import IntentRecord
from db.repositories.licenses import LicenseRecord
from db.repositories.pending_orders import PendingOrder
from db.repositories.positions import ActivePosition
from db.repositories.signals import SignalRecord, Subscriber
from db.repositories.strategy import StrategyRecord
from db.repositories.trades import TradeLog
from db.repositories.users import UserRecord
from services import autotrade, notices
from services.fill_ledger_replay import OrderFill
from services.outbox import NoticeKind

NOW = datetime(2026, 4, 1, 12, tzinfo=UTC)
BTC = "BTC/USDT:USDT"
SIGNAL = SignalRecord(
    7, "paper", BTC, "long", 0.83, Decimal("65000.50"), 5, Decimal("3.0"), Decimal("1.5"),
    ("volume ×4 <1h>", "breakout"), NOW,
)  # fmt: skip
ANN = UserRecord(
    42, 4200, "Ann", "ann", True, False, None, True, 0.6, "on", "on", "on", NOW, NOW
)  # fmt: skip
CANDIDATE = Candidate(42, 4200, StrategyRecord(42), True, "paper", "demo", 0)
ROW = ActivePosition(
    42, "bybit", "demo", BTC, "long", Decimal("0.01"), Decimal("65000"), 5, NOW, NOW
)


def intent(**changes: object) -> IntentRecord:
    fields: dict[str, object] = {
        "client_order_id": "tw-1", "user_id": 42, "exchange": "paper", "account_type": "demo",
        "symbol": BTC, "side": "buy", "order_type": "market", "qty": Decimal("0.010"),
        "price": None, "reduce_only": False, "leverage": 5, "take_profit": Decimal("66950"),
        "stop_loss": Decimal("64025"), "origin": "auto", "signal_id": 7, "status": "filled",
        "exchange_order_id": "1", "filled_qty": Decimal("0.010"), "avg_price": Decimal("65010"),
        "fee": None, "error": None, "attempts": 1, "expires_at": None, "created_at": NOW,
        "updated_at": NOW,
    }  # fmt: skip
    fields.update(changes)
    return IntentRecord(**fields)  # type: ignore[arg-type]


def execution(status: str, **kw: object) -> ExecutionRecord:
    return ExecutionRecord(7, 42, status, NOW, **kw)  # type: ignore[arg-type]


def test_signal() -> None:
    user = Subscriber(42, 4200, 0.6, (), ())
    notice = notices.signal(SIGNAL, user)
    assert notice.text == (
        "📈 <b>BTC long</b> · score 0.83\n"
        "Price 65000.5 · leverage 5× · TP +3 % · SL −1.5 %\n"
        "volume ×4 &lt;1h&gt; · breakout\n"
        "/long BTC 50 5"
    )
    assert (notice.kind, notice.dedup_key, notice.signal_id) == (
        NoticeKind.SIGNAL,
        "signal:7:42",
        7,
    )
    assert (notice.user_id, notice.chat_id) == (42, 4200)


@pytest.mark.parametrize(
    ("record", "order", "text"),
    [
        (
            execution(ExecutionStatus.SKIPPED, reason=autotrade.NO_MARGIN),
            None,
            "🤖 Auto-trade skipped LONG BTC/USDT:USDT: not enough free margin for the order.",
        ),
        (
            execution(ExecutionStatus.FAILED, reason="Bybit said <no>"),
            None,
            "🤖 Auto-trade LONG BTC/USDT:USDT failed: Bybit said &lt;no&gt;",
        ),
        (
            execution(ExecutionStatus.FILLED, fill_price=Decimal("65010")),
            intent(),
            "🤖 Auto-trade filled: LONG BTC/USDT:USDT 0.010 at 65010 (signal 65000.50, +0.01 %)"
            "\nTP 66950 · SL 64025",
        ),
        (
            execution(ExecutionStatus.PLACED),
            intent(filled_qty=None, take_profit=None, stop_loss=None),
            "🤖 Auto-trade placed: LONG BTC/USDT:USDT 0.010 (signal price 65000.50)",
        ),
    ],
)
def test_auto_trade(record: ExecutionRecord, order: IntentRecord | None, text: str) -> None:
    notice = notices.auto_trade(SIGNAL, record, CANDIDATE, order)
    assert notice.text == text
    assert (notice.kind, notice.dedup_key, notice.chat_id) == (NoticeKind.FILL, "auto:7:42", 4200)


def test_every_reason_a_trader_is_told_has_words() -> None:
    told = {
        autotrade.NO_LICENCE, autotrade.NO_ACCOUNT, autotrade.MAX_POSITIONS,
        autotrade.NO_MARGIN, autotrade.BELOW_MINIMUM, autotrade.NOT_LISTED,
        autotrade.UNAVAILABLE,
    }  # fmt: skip
    assert told == set(notices.AUTO_SKIPPED)
    assert told.isdisjoint(autotrade.QUIET)


def test_positions_and_orders() -> None:
    closed = notices.position_closed(
        ROW, Decimal("0.01"), "stop_loss", Decimal("64000"), Decimal("-10.456")
    )
    assert closed == "Stop loss hit: LONG 0.01 BTC/USDT:USDT at 64000, PnL -10.46 USDT"
    guessed = notices.position_closed(
        ROW, Decimal("0.005"), "exchange", Decimal("65500"), Decimal("2.5"), estimated=True
    )
    assert guessed == "Closed on the exchange: LONG 0.005 BTC/USDT:USDT at ~65500, PnL +2.50 USDT"
    opened = notices.position_opened(ROW, Decimal("0.01"), Decimal("65000"))
    assert opened == "Position opened: LONG 0.01 BTC/USDT:USDT at 65000"
    filled = notices.auto_trade_filled(ROW, Decimal("0.01"), Decimal("65000"), Decimal("64990"))
    assert filled == "🤖 Auto-trade filled: LONG 0.01 BTC/USDT:USDT at 65000 (signal 64990)"
    assert notices.auto_trade_filled(ROW, Decimal("1"), Decimal("2"), None).endswith("at 2")

    order = PendingOrder(
        42, "bybit", "demo", BTC, "buy", "tw-9", "e-9", Decimal("60000"), Decimal("0.01"),
        NOW, NOW + timedelta(minutes=60),
    )  # fmt: skip
    expired = notices.order_expired(order, 4200)
    assert expired.text == (
        "Limit order expired and cancelled: buy 0.01 BTC/USDT:USDT at 60000, "
        "open since 2026-04-01 12:00 UTC."
    )
    assert (expired.kind, expired.dedup_key) == (NoticeKind.FILL, "expiry:tw-9")


def test_licences() -> None:
    end = NOW + timedelta(days=30)
    granted = notices.licence_granted(ANN, 30, "pro", end)
    assert granted.text == (
        "🎉 You were granted 30 days of <b>pro</b>. Your licence is active until "
        "2026-05-01 12:00 UTC."
    )
    assert (granted.kind, granted.dedup_key) == (
        NoticeKind.SYSTEM,
        "licence:grant:42:1777636800000",
    )

    revoked = notices.licence_revoked(ANN, "chargeback <x>", NOW)
    assert revoked.text == (
        "Your licence was revoked by an admin (chargeback &lt;x&gt;). You can no longer open "
        "new positions and auto-trading is paused. Closing positions, cancelling orders, "
        "managing TP/SL and viewing everything keep working. Renew with /buy or /redeem a "
        "promo code."
    )
    assert revoked.dedup_key == "licence:revoked:42:1775044800000"

    record = LicenseRecord(42, "pro", NOW, NOW + timedelta(hours=5), True, "grant", True, False,
                           None, None)  # fmt: skip
    soon = notices.licence_expiry("1d", ANN, record, NOW)
    assert soon.text == (
        "⏳ Your <b>pro</b> licence ends 2026-04-01 17:00 UTC (in 5 hours). After that you "
        "can't open new positions and auto-trading pauses; closing, cancelling, TP/SL and "
        "viewing keep working. Renew with /buy or /redeem a promo code."
    )
    assert soon.dedup_key == "licence:1d:42:1775062800000"
    later = notices.licence_expiry("3d", ANN, record, NOW - timedelta(days=2))
    assert "(in 3 days)" in later.text
    ended = notices.licence_expiry("expired", ANN, record, NOW)
    assert ended.text.startswith("⌛ Your <b>pro</b> licence has ended. You can no longer open")
    assert ended.dedup_key == "licence:expired:42:1775062800000"


def test_broadcast_goes_out_as_the_admin_wrote_it() -> None:
    notice = notices.broadcast(Recipient(42, 4200), 3, "<b>Hello</b> & welcome")
    assert notice.text == "<b>Hello</b> & welcome"
    assert (notice.kind, notice.dedup_key, notice.broadcast_id) == (
        NoticeKind.BROADCAST,
        "broadcast:3:42",
        3,
    )


def test_a_settled_auto_trade_order_shares_the_auto_trade_notice_key() -> None:
    """After a crash both the settlement and the resumed auto-trade know the outcome: the
    outbox keeps the first and ignores the second, so the trader is told once."""
    auto = notices.order_settled(intent(), 4200)
    told = notices.auto_trade(
        SIGNAL, execution(ExecutionStatus.FILLED, fill_price=Decimal("65010")), CANDIDATE, intent()
    )
    assert auto.dedup_key == told.dedup_key == "auto:7:42"
    assert auto.text.startswith("✅ Your order buy 0.010 BTC/USDT:USDT, interrupted before Paper")
    manual = notices.order_settled(intent(origin="manual", signal_id=None), 4200)
    assert manual.dedup_key == "settled:tw-1"


def test_fills_as_the_exchange_recorded_them() -> None:
    trade = TradeLog(
        42, "bybit", "demo", BTC, "long", Decimal("0.01"), Decimal("60000"), Decimal("62000"),
        Decimal("19.329"), Decimal("0.671"), NOW, NOW, close_reason="take_profit",
        order_id="o-7",
    )  # fmt: skip
    closed = notices.trade_closed(trade, 4200)
    assert closed.text == (
        "Take profit hit: LONG 0.01 BTC/USDT:USDT at 62000 (entry 60000), fees 0.6710, "
        "PnL +19.33 USDT"
    )
    assert (closed.kind, closed.dedup_key) == (NoticeKind.STOP, "fill-close:bybit:demo:o-7:42")
    outside = notices.trade_closed(replace(trade, close_reason="exchange"), 4200)
    assert outside.kind is NoticeKind.FILL and outside.text.startswith("Closed on the exchange")
    order = OrderFill(
        "o-8", None, BTC, Side.SELL, Decimal("0.5"), Decimal("3000.5"), Decimal("0.3")
    )
    filled = notices.order_filled((42, "okx", "live"), order, 4200)
    assert filled.text == "Order filled: SELL 0.5 BTC/USDT:USDT at 3000.5, fee 0.3000 (OKX)"
    assert (filled.kind, filled.dedup_key) == (NoticeKind.FILL, "fill-open:okx:live:o-8:0.5")
