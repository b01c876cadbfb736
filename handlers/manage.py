"""/tp, /sl, /trail and the TP/SL buttons under /positions: manage an open position.

Buttons name the account the list showed and the venue's symbol id; the service refuses an
account that is no longer the presser's active one, and acts only on the presser's own
position, so a forwarded or made-up button changes nothing of anyone else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from html import escape

from telegram import InlineKeyboardMarkup, Update
from telegram.constants import ParseMode

from handlers.args import is_id
from handlers.base import Handler, button, callback_parts, command, edit_in_place, presser, sender
from handlers.context import CommandInfo, TradewindContext
from handlers.manage_render import render_change, render_menu
from services.position_levels import SL_USAGE, TP_USAGE, TRAIL_USAGE
from services.position_management import StopChange

COMMANDS = (
    CommandInfo(
        "tp", "Set or move the take profit of an open position", usage="SYMBOL PRICE|+PCT%"
    ),
    CommandInfo("sl", "Set or move the stop loss of an open position", usage="SYMBOL PRICE|-PCT%"),
    CommandInfo("trail", "Trail the stop loss of an open position", usage="SYMBOL DISTANCE|PCT%"),
)
OUT_OF_DATE = "This button is out of date; send /positions again."
PICKS = {"t": ("2", "5", "10"), "s": ("1", "2", "5")}  # percent picks in the TP and SL menus


async def tp(update: Update, context: TradewindContext) -> None:
    """Set the take profit: `/tp BTC 70000`, `/tp BTC +3%`, `/tp BTC off`."""
    manage = context.services.position_management
    await _set_level(update, context, TP_USAGE, manage.take_profit)


async def sl(update: Update, context: TradewindContext) -> None:
    """Set the stop loss: `/sl BTC 62000`, `/sl BTC -2%`; a looser one asks first."""
    manage = context.services.position_management
    await _set_level(update, context, SL_USAGE, manage.stop_loss)


async def _set_level(
    update: Update,
    context: TradewindContext,
    usage: str,
    setter: Callable[[int, str, str], Awaitable[StopChange]],
) -> None:
    """`/tp` and `/sl`: exactly SYMBOL and LEVEL, else the usage."""
    user, message = sender(update)
    args = context.args or []
    if len(args) != 2:
        await message.reply_html(escape(usage))
        return
    await _reply(update, await setter(user.id, args[0], args[1]))


async def trail(update: Update, context: TradewindContext) -> None:
    """Trail the stop: `/trail BTC 500`, `/trail BTC 1.5% +2%`, `/trail BTC`, `/trail BTC off`."""
    user, message = sender(update)
    args = context.args or []
    if not 1 <= len(args) <= 3:
        await message.reply_html(escape(TRAIL_USAGE))
        return
    distance = args[1] if len(args) > 1 else None
    activation = args[2] if len(args) > 2 else None
    manage = context.services.position_management
    change = await manage.trail(user.id, args[0], distance, activation)
    await _reply(update, change)


async def menu_button(update: Update, context: TradewindContext) -> None:
    """The TP (`mt`) or SL (`ms`) menu of one position: its levels and percent picks."""
    user, query = presser(update)
    parts = callback_parts(update)
    target = _target(parts, 3)
    if target is None:
        await query.answer(OUT_OF_DATE, show_alert=True)
        return
    account_id, market_id = target
    held = await context.services.position_management.held(user.id, market_id, account_id)
    kind = "t" if parts[0] == "mt" else "s"
    text, keys = render_menu(held, kind, PICKS[kind])
    await query.answer()
    await _send(update, text, keys)


async def pick_button(update: Update, context: TradewindContext) -> None:
    """A percent pick of a menu: `mp:<t|s>:<account>:<symbol id>:<pct>`."""
    user, query = presser(update)
    parts = callback_parts(update)
    if len(parts) != 5 or parts[1] not in PICKS or parts[4] not in PICKS[parts[1]]:
        await query.answer(OUT_OF_DATE, show_alert=True)
        return
    target = _target(parts[1:4], 3)
    if target is None:
        await query.answer(OUT_OF_DATE, show_alert=True)
        return
    account_id, market_id = target
    manage = context.services.position_management
    if parts[1] == "t":
        change = await manage.take_profit(user.id, market_id, f"+{parts[4]}%", account_id)
    else:
        change = await manage.stop_loss(user.id, market_id, f"-{parts[4]}%", account_id=account_id)
    await query.answer()
    await _show(update, change)


async def break_even_button(update: Update, context: TradewindContext) -> None:
    """Move the stop loss to the entry price (`mb:<account>:<symbol id>`)."""
    await _whole(update, context, "b")


async def remove_button(update: Update, context: TradewindContext) -> None:
    """Remove the TP, SL and trailing stop (`mx:<account>:<symbol id>`); asks first if it
    leaves the position without a stop."""
    await _whole(update, context, "x")


async def confirm_button(update: Update, context: TradewindContext) -> None:
    """Confirm or cancel a change that adds risk.

    `mc:<account>:<symbol id>:<s|b|x|n>[:<level>]`: a stop loss, break-even, removal, or no.
    """
    user, query = presser(update)
    parts = callback_parts(update)
    target = _target(parts, 4, 5)
    what = parts[3] if len(parts) > 3 else ""
    if target is None or what not in ("s", "b", "x", "n") or (what == "s") != (len(parts) == 5):
        await query.answer(OUT_OF_DATE, show_alert=True)
        return
    account_id, market_id = target
    manage = context.services.position_management
    if what == "n":
        await manage.held(user.id, market_id, account_id)  # only its owner's card
        await query.answer("Nothing changed.")
        await edit_in_place(update, "Nothing changed; your stop loss stays where it was.")
        return
    if what == "s":
        change = await manage.stop_loss(
            user.id, market_id, parts[4], confirmed=True, account_id=account_id
        )
    elif what == "b":
        change = await manage.break_even(user.id, market_id, confirmed=True, account_id=account_id)
    else:
        change = await manage.remove(user.id, market_id, confirmed=True, account_id=account_id)
    await query.answer("Done.")
    text, keys = render_change(change)
    await edit_in_place(update, text, keys)


def handlers() -> list[Handler]:
    return [
        command("tp", tp),
        command("sl", sl),
        command("trail", trail),
        button("mt", menu_button),
        button("ms", menu_button),
        button("mp", pick_button),
        button("mb", break_even_button),
        button("mx", remove_button),
        button("mc", confirm_button),
    ]


async def _whole(update: Update, context: TradewindContext, what: str) -> None:
    user, query = presser(update)
    target = _target(callback_parts(update), 3)
    if target is None:
        await query.answer(OUT_OF_DATE, show_alert=True)
        return
    account_id, market_id = target
    manage = context.services.position_management
    if what == "b":
        change = await manage.break_even(user.id, market_id, account_id=account_id)
    else:
        change = await manage.remove(user.id, market_id, account_id=account_id)
    await query.answer()
    await _show(update, change)


def _target(parts: Sequence[str], *sizes: int) -> tuple[int, str] | None:
    """(account id, symbol id) from `prefix:<account>:<symbol id>...`, or None if garbled."""
    if len(parts) not in sizes or not is_id(parts[1]):
        return None
    market_id = parts[2]
    if not (0 < len(market_id) <= 30 and market_id.replace("-", "").isalnum()):
        return None
    return int(parts[1]), market_id


async def _reply(update: Update, change: StopChange) -> None:
    _, message = sender(update)
    text, keys = render_change(change)
    await message.reply_html(text, reply_markup=keys)


async def _show(update: Update, change: StopChange) -> None:
    text, keys = render_change(change)
    await _send(update, text, keys)


async def _send(update: Update, text: str, keys: InlineKeyboardMarkup | None) -> None:
    """A new message in the chat the button was pressed in (the list stays as it is)."""
    chat = update.effective_chat
    if chat is not None:
        await chat.send_message(text, parse_mode=ParseMode.HTML, reply_markup=keys)
