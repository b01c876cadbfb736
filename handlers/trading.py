"""/long, /short, /close and /cancel, and the Confirm, Cancel, Close and Cancel-order buttons.

Opening and closing go through a confirmation card; nothing reaches the exchange before
Confirm. The Cancel button under an open order (from /orders) cancels it at once: cancelling
only ever reduces risk, and the order is named by id and checked against the presser's own
open orders.
"""

from __future__ import annotations

from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode

from core.exchange.models import Order, PositionSide
from handlers.args import split_limit_price
from handlers.base import (
    MAX_ANSWER,
    Handler,
    button,
    callback_data,
    callback_parts,
    command,
    edit_in_place,
    presser,
    sender,
)
from handlers.context import CommandInfo, TradewindContext
from handlers.render import base, exact, level, money, price, quantity, signed, symbol
from handlers.trading_limits import render_limit_card, render_resting
from services.amounts import TAKER_FEE
from services.trading import CardExpired, CloseCard, OpenCard, Placement

COMMANDS = (
    CommandInfo("long", "Open a long after a confirmation", "SYMBOL USDT [LEVERAGE] [@ PRICE]"),
    CommandInfo("short", "Open a short after a confirmation", "SYMBOL USDT [LEVERAGE] [@ PRICE]"),
    CommandInfo("close", "Close a position, or a share of it", "SYMBOL [PERCENT]"),
    CommandInfo("cancel", "Cancel an open order", "ORDER_ID"),
)
USAGE = {
    "long": "/long SYMBOL USDT [LEVERAGE] — e.g. /long BTC 50 10; a limit order adds "
    "@ PRICE: /long BTC 50 10 @ 64000 (also @64k, or @-1% below the last price)",
    "short": "/short SYMBOL USDT [LEVERAGE] — e.g. /short ETH 100 5; a limit order adds "
    "@ PRICE: /short ETH 100 5 @ 3500 (also @3.5k, or @+1% above the last price)",
    "close": "/close SYMBOL [PERCENT] — e.g. /close BTC 50 (no percent closes all of it)",
    "cancel": "/cancel ORDER_ID — the id /orders shows, or any unique start of it, "
    "e.g. /cancel 685bd851-9",
}


async def long(update: Update, context: TradewindContext) -> None:
    """Show the card for a long position of SYMBOL worth USDT."""
    await _open(update, context, PositionSide.LONG)


async def short(update: Update, context: TradewindContext) -> None:
    """Show the card for a short position of SYMBOL worth USDT."""
    await _open(update, context, PositionSide.SHORT)


async def close(update: Update, context: TradewindContext) -> None:
    """Show the card closing PERCENT (default all) of the position in SYMBOL."""
    user, message = sender(update)
    args = context.args or []
    if len(args) not in (1, 2):
        await message.reply_html(escape(USAGE["close"]))
        return
    percent = args[1] if len(args) == 2 else None
    card = await context.services.trading.close_card(user.id, args[0], percent)
    await message.reply_html(render_close_card(card), reply_markup=_card_keys(card))


async def cancel(update: Update, context: TradewindContext) -> None:
    """Cancel the open order ORDER_ID."""
    user, message = sender(update)
    args = context.args or []
    if len(args) != 1:
        await message.reply_html(escape(USAGE["cancel"]))
        return
    order = await context.services.trading.cancel_order(user.id, args[0])
    await message.reply_html(render_cancelled(order))


async def confirm_button(update: Update, context: TradewindContext) -> None:
    """Place the card's order once, and turn the card into the result."""
    user, query = presser(update)
    parts = callback_parts(update)
    try:
        placed = await context.services.trading.confirm(user.id, parts[-1])
    except CardExpired as expired:
        await query.answer(str(expired)[:MAX_ANSWER], show_alert=True)
        await edit_in_place(update, f"⌛ {escape(str(expired))}")
        return
    if placed.repeated:
        await query.answer(_repeat_answer(placed))
        if placed.in_flight or not _has_buttons(query.message):
            return  # the press that placed it shows (or is about to show) the result
    elif placed.in_flight:
        await query.answer("Sent; the exchange has not confirmed it yet.")
    else:
        await query.answer("Refused by the exchange." if placed.error else "Done.")
    await edit_in_place(update, render_placement(placed))


async def discard_button(update: Update, context: TradewindContext) -> None:
    """Drop the card's draft; nothing is sent."""
    user, query = presser(update)
    parts = callback_parts(update)
    await context.services.trading.discard(user.id, parts[-1])
    await query.answer("Cancelled.")
    await edit_in_place(update, "✖️ Cancelled — nothing was sent to the exchange.")


async def close_button(update: Update, context: TradewindContext) -> None:
    """Open the card closing all of the position named by the button (from /positions)."""
    user, query = presser(update)
    parts = callback_parts(update)
    card = await context.services.trading.close_card(user.id, parts[-1], None)
    await query.answer()
    await _send(update, context, user.id, render_close_card(card), _card_keys(card))


async def cancel_order_button(update: Update, context: TradewindContext) -> None:
    """Cancel the open order named by the button (from /orders) at once."""
    query, user, parts = update.callback_query, update.effective_user, callback_parts(update)
    if query is None or user is None:
        return
    order = await context.services.trading.cancel_order(user.id, ":".join(parts[1:]))
    await query.answer("Order cancelled.")
    await _send(update, context, user.id, render_cancelled(order))


def handlers() -> list[Handler]:
    return [
        command("long", long),
        command("short", short),
        command("close", close),
        command("cancel", cancel),
        button("ok", confirm_button),
        button("no", discard_button),
        button("cl", close_button),
        button("co", cancel_order_button),
    ]


async def _open(update: Update, context: TradewindContext, side: PositionSide) -> None:
    user, message = sender(update)
    args, limit = split_limit_price(context.args or [], USAGE[side.value])
    if len(args) not in (2, 3):
        await message.reply_html(escape(USAGE[side.value]))
        return
    leverage = args[2] if len(args) == 3 else None
    card = await context.services.trading.open_card(
        user.id, side, args[0], args[1], leverage, limit
    )
    await message.reply_html(render_open_card(card), reply_markup=_card_keys(card))


def render_open_card(card: OpenCard) -> str:
    if card.limit is not None:
        return render_limit_card(card, card.limit)
    return "\n".join(
        [
            f"<b>Confirm {card.side.value.upper()} {symbol(card.symbol)}</b> · "
            f"{escape(card.account)}",
            f"Price: {price(card.price, card.tick)} USDT (market order)",
            f"Quantity: {quantity(card.qty)} {base(card.symbol)} (rounded down to the lot size)",
            f"Notional: {money(card.notional)} USDT",
            f"Leverage: {card.leverage}× · margin {money(card.margin)} USDT",
            f"Take profit: {level(card.take_profit, card.tick)} · stop loss: "
            f"{level(card.stop_loss, card.tick)}",
            f"Fee estimate: {money(card.fee, 4)} USDT (taker {TAKER_FEE * 100:.3f} %)",
            "",
            "Nothing is sent before you confirm; this card is valid for 2 minutes.",
        ]
    )


def render_close_card(card: CloseCard) -> str:
    return "\n".join(
        [
            f"<b>Confirm closing {quantity(card.percent)}% of your {card.side.value.upper()} "
            f"{symbol(card.symbol)}</b> · {escape(card.account)}",
            f"Quantity: {quantity(card.qty)} of "
            f"{quantity(card.position_qty)} {base(card.symbol)} (reduce-only)",
            f"Entry: {price(card.entry_price, card.tick)} · "
            f"now: {price(card.price, card.tick)} USDT",
            f"Estimated PnL: {signed(card.pnl)} USDT after fees of about "
            f"{money(card.fee, 4)} USDT (opening and closing)",
            "",
            "Nothing is sent before you confirm; this card is valid for 2 minutes.",
        ]
    )


def render_placement(placed: Placement) -> str:
    what = f"{placed.side.value.upper()} {symbol(placed.symbol)} · {escape(placed.account)}"
    if placed.in_flight:
        note = escape(placed.error or "The exchange has not answered yet.")
        return f"⏳ <b>Sent, outcome being checked</b>: {what}\n{note}"
    if placed.error is not None:
        return f"❌ <b>Not placed</b>: {what}\n{escape(placed.error)}"
    if placed.resting:
        return render_resting(placed, what)
    if placed.filled_qty <= 0 or placed.avg_price is None:
        return f"📨 <b>Order placed</b>: {what}\nOrder id: {escape(placed.order_id or '?')}"
    title = "Closed" if placed.closing else "Opened"
    lines = [
        f"✅ <b>{title}</b>: {what}",
        f"Filled {quantity(placed.filled_qty)} {base(placed.symbol)} at "
        f"{exact(placed.avg_price)} USDT",
        f"Fee: {money(placed.fee, 4)} USDT",
    ]
    if not placed.closing:
        lines.append(f"Leverage: {placed.leverage}×")
        lines.append(f"TP: {level(placed.take_profit)} · SL: {level(placed.stop_loss)}")
    if placed.trade is not None:
        lines.append(
            f"Realised PnL: {signed(placed.trade.pnl)} USDT (after fees of "
            f"{money(placed.trade.fee, 4)} USDT, opening and closing)"
        )
    lines.append(f"Order id: {escape(placed.order_id or '?')}")
    return "\n".join(lines)


def render_cancelled(order: Order) -> str:
    text = (
        f"✖️ <b>Order cancelled</b>: {escape(order.side.value)} {quantity(order.qty)} "
        f"{escape(order.symbol)} (id {escape(order.order_id)})"
    )
    if order.filled_qty > 0:  # what filled before the cancel is done, and stays
        kept = "that much is closed" if order.reduce_only else "it is kept; /positions shows it"
        text += f"\n{quantity(order.filled_qty)} of it had filled before: {kept}."
    return text


def _card_keys(card: OpenCard | CloseCard) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    "✅ Confirm", callback_data=callback_data("ok", card.client_order_id)
                ),
                InlineKeyboardButton(
                    "✖️ Cancel", callback_data=callback_data("no", card.client_order_id)
                ),
            ]
        ]
    )


def _repeat_answer(placed: Placement) -> str:
    if placed.in_flight:
        return "Already confirmed: the order is being placed, once only."
    if placed.error is not None:
        return "This order was refused already; send the command again to retry."
    return "Already confirmed: this order is placed once only."


def _has_buttons(message: object) -> bool:
    return isinstance(message, Message) and message.reply_markup is not None


async def _send(
    update: Update,
    context: TradewindContext,
    user_id: int,
    text: str,
    keys: InlineKeyboardMarkup | None = None,
) -> None:
    """A new message in the chat a button was pressed in (the pressed one stays as it is)."""
    chat_id = update.effective_chat.id if update.effective_chat is not None else user_id
    await context.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML, reply_markup=keys)
