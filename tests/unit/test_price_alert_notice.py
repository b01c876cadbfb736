"""The price-alert notice, word for word, with its kind and its once-only key."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from db.repositories.price_alerts import ABOVE, BELOW, PriceAlert
from services import notices
from services.outbox import NoticeKind

SET_AT = datetime(2026, 4, 1, 12, 30, tzinfo=UTC)


def test_an_alert_above_says_the_level_the_last_price_and_when_it_was_set() -> None:
    alert = PriceAlert(7, 42, "paper", "BTC/USDT:USDT", ABOVE, 70000.0, 64123.4, SET_AT)
    notice = notices.price_alert(alert, 4200, Decimal("70012.5"))
    assert notice.text == (
        "🔔 <b>BTC</b> is above 70000: last 70012.5\n"
        "BTC/USDT:USDT · alert set 2026-04-01 12:30 UTC at 64123.4. /alerts lists the others."
    )
    assert (notice.user_id, notice.chat_id, notice.kind) == (42, 4200, NoticeKind.SYSTEM)
    assert notice.dedup_key == "price_alert:7"


def test_small_levels_keep_their_digits_and_symbols_are_escaped() -> None:
    alert = PriceAlert(8, 42, "paper", "A<B/USDT:USDT", BELOW, 0.0001234, 0.00013, SET_AT)
    notice = notices.price_alert(alert, 4200, Decimal("0.0001230"))
    assert notice.text.startswith("🔔 <b>A&lt;B</b> is below 0.0001234: last 0.000123\n")
    assert "A&lt;B/USDT:USDT" in notice.text
