"""What /tp, /sl, /trail and the TP/SL buttons say: a change done, a card asking to confirm a
looser stop, and the TP or SL menu of one position."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from core.exchange.models import ZERO, Market
from handlers.base import callback_data
from services.position_levels import show
from services.position_management import Held, StopChange

Page = tuple[str, InlineKeyboardMarkup | None]


def render_change(change: StopChange) -> Page:
    """A change done, or the card that asks before the stop loss moves away."""
    held, m = change.held, change.held.market
    name = f"{held.position.side.upper()} <b>{escape(m.base)}</b>"
    last = f"last price {show(held.price, m)}"
    if not change.applied:
        return _card(change, name)
    if change.what == "tp":
        if change.take_profit == ZERO:
            return f"✅ Take profit of your {name} removed ({last}).", None
        return (
            f"✅ Take profit of your {name} set at {_at(change.take_profit, held)} ({last}).",
            None,
        )
    if change.what in ("sl", "be"):
        if change.stop_loss == ZERO:
            return f"✅ Stop loss of your {name} removed ({last}).", None
        be = " (break-even)" if change.what == "be" else ""
        return (
            f"✅ Stop loss of your {name} moved to {_at(change.stop_loss, held)}{be} ({last}).",
            None,
        )
    if change.what == "remove":
        return f"✅ Take profit, stop loss and trailing stop of your {name} removed ({last}).", None
    if change.what == "untrail":
        return f"✅ Your {name} is no longer trailed; its stop loss stays where it was.", None
    distance = change.trail_distance or ZERO
    start = (
        f"once the price reaches {show(change.trail_activation, m)}"
        if change.trail_activation
        else "from now"
    )
    keeper = "the bot keeps it on every scan" if change.by_bot else "the exchange keeps it"
    return (
        f"✅ Your {name} trails its stop loss {show(distance, m)} "
        f"({distance / held.price * 100:.2f} %) behind the best price, {start} ({last}); "
        f"{keeper}. /trail {escape(m.base)} off stops it.",
        None,
    )


def render_menu(held: Held, kind: str, picks: Sequence[str]) -> Page:
    """The TP (`t`) or SL (`s`) menu of one position: its levels and percent picks."""
    p, m = held.position, held.market
    what, cmd, sign = ("take profit", "tp", "+") if kind == "t" else ("stop loss", "sl", "-")
    text = (
        f"<b>{escape(m.base)}</b> {p.side.upper()} · last {show(held.price, m)} · entry "
        f"{show(p.entry_price, m)}\nTP {_level(p.take_profit, m)} · SL {_level(p.stop_loss, m)}"
        f" · liq. {_level(p.liquidation_price, m)}\n\nPick a {what} from the last price, or "
        f"send /{cmd} {escape(m.base)} PRICE (or {sign}PCT%)."
    )
    account, mid = held.account.credential_id, m.exchange_id
    row = [
        InlineKeyboardButton(
            f"{sign}{pick}%", callback_data=callback_data("mp", kind, account, mid, pick)
        )
        for pick in picks
    ]
    return text, InlineKeyboardMarkup([row])


def _card(change: StopChange, name: str) -> Page:
    held, m = change.held, change.held.market
    p = held.position
    now = _level(p.stop_loss, m)
    if change.what == "remove":
        what, code = "removes the stop loss (and any trailing stop) of", "x"
    elif change.stop_loss == ZERO:
        what, code = "removes the stop loss of", "s"
    else:
        to = show(change.stop_loss or ZERO, m)
        what = f"moves the stop loss ({now}) to {to}, further from the price, on"
        code = "b" if change.what == "be" else "s"
    more = ""
    if change.stop_loss and p.stop_loss:
        extra = abs(p.stop_loss - change.stop_loss) * p.qty
        more = f"\nIf it is hit, that is up to <b>{extra:,.2f} USDT</b> more lost."
    text = f"⚠️ This {what} your {name} (last {show(held.price, m)}).{more}\nConfirm?"
    parts: list[object] = [held.account.credential_id, m.exchange_id, code]
    if code == "s":
        parts.append(format(change.stop_loss or ZERO, "f"))
    keys = InlineKeyboardMarkup(
        [[
            InlineKeyboardButton("Confirm", callback_data=callback_data("mc", *parts)),
            InlineKeyboardButton("Cancel", callback_data=callback_data("mc", *parts[:2], "n")),
        ]]
    )  # fmt: skip
    return text, keys


def _at(level: Decimal | None, held: Held) -> str:
    value = level or ZERO
    move = (value - held.price) / held.price * 100
    return f"<b>{show(value, held.market)}</b>, {move:+.2f} %"


def _level(value: Decimal | None, market: Market) -> str:
    return show(value, market) if value else "—"
