"""How a limit order reads: its confirmation card, and the reply once it rests on the book."""

from __future__ import annotations

from html import escape

from handlers.render import base, exact, level, money, price, quantity, symbol
from services.amounts import TAKER_FEE
from services.cards import LimitTerms, OpenCard, Placement
from services.limit_orders import MAKER_FEE


def render_limit_card(card: OpenCard, limit: LimitTerms) -> str:
    """The card of a limit: its price against the last one, and a warning if it takes."""
    last = price(limit.last, card.tick)
    where = "below" if limit.distance_pct < 0 else "above"
    rate, role = (TAKER_FEE, "taker") if limit.takes else (MAKER_FEE, "maker")
    lines = [
        f"<b>Confirm LIMIT {card.side.value.upper()} {symbol(card.symbol)}</b> · "
        f"{escape(card.account)}",
        f"Limit price: {price(limit.price, card.tick)} USDT, "
        f"{abs(limit.distance_pct):.2f} % {where} the last price {last}"
        + (" (post-only)" if limit.post_only else ""),
        f"Quantity: {quantity(card.qty)} {base(card.symbol)} (rounded down to the lot size)",
        f"Notional: {money(card.notional)} USDT",
        f"Leverage: {card.leverage}× · margin {money(card.margin)} USDT",
        f"Take profit: {level(card.take_profit, card.tick)} · stop loss: "
        f"{level(card.stop_loss, card.tick)} (from the limit price)",
        f"Fee estimate: {money(card.fee, 4)} USDT ({role} {rate * 100:.3f} %)",
        f"Expiry: cancelled {limit.ttl_min} min after it is placed if still unfilled "
        "(/set limit_order_ttl_min)",
    ]
    if limit.takes:
        buy = card.side.value == "long"
        side, wrong, better = (
            ("buy", "at or above", "below") if buy else ("sell", "at or below", "above")
        )
        lines.append(
            f"⚠️ A {side} limit {wrong} the last price fills at once as taker, like a market "
            f"order (at {last} or better). Confirm only if you mean that; otherwise Cancel "
            f"and give a price {better} {last}."
        )
    lines += ["", "Nothing is sent before you confirm; this card is valid for 2 minutes."]
    return "\n".join(lines)


def render_resting(placed: Placement, what: str) -> str:
    """A limit accepted by the exchange and waiting on the book (maybe partly filled)."""
    side = "Buy" if placed.side.value == "long" else "Sell"
    at = exact(placed.limit_price) if placed.limit_price is not None else "?"
    lines = [
        f"📌 <b>Limit order placed</b>: {what}",
        f"{side} {quantity(placed.qty)} {base(placed.symbol)} at {at} USDT, resting on the book",
    ]
    if placed.filled_qty > 0:
        lines.append(f"Filled so far: {quantity(placed.filled_qty)} {base(placed.symbol)}")
    lines.append(f"TP: {level(placed.take_profit)} · SL: {level(placed.stop_loss)}")
    if placed.expires_at is not None:
        lines.append(f"Cancelled at {placed.expires_at:%Y-%m-%d %H:%M} UTC if still unfilled.")
    lines.append(f"Order id: {escape(placed.order_id or '?')}")
    return "\n".join(lines)
