"""/promo_create, /promo_list, /promo_disable for admins; /redeem for traders."""

from __future__ import annotations

from datetime import datetime
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from handlers.args import is_id, looks_numeric, whole_number
from handlers.base import (
    Handler,
    button,
    callback_data,
    callback_parts,
    command,
    edit_in_place,
    sender,
)
from handlers.context import CommandInfo, TradewindContext
from handlers.render import license_line
from services.promos import PromoPage, PromoRecord

COMMANDS = (
    CommandInfo("redeem", "Redeem a promo code for licence days", usage="CODE"),
    CommandInfo(
        "promo_create",
        "Create a promo code",
        usage="CODE DAYS MAX_USES [VALID_DAYS] [PLAN]",
        admin=True,
    ),
    CommandInfo("promo_list", "Promo codes with uses and expiry", admin=True),
    CommandInfo("promo_disable", "Stop a promo code", usage="CODE", admin=True),
)

REDEEM_USAGE = "Usage: /redeem CODE — e.g. /redeem WELCOME"
CREATE_USAGE = (
    "Usage: /promo_create CODE DAYS MAX_USES [VALID_DAYS] [PLAN] — e.g. /promo_create "
    "WELCOME 7 100 30 pro (VALID_DAYS left out: never expires)"
)
DISABLE_USAGE = "Usage: /promo_disable CODE"


async def redeem(update: Update, context: TradewindContext) -> None:
    """Redeem a promo code (any case) for licence days."""
    user, message = sender(update)
    args = context.args or []
    if len(args) != 1:
        await message.reply_html(escape(REDEEM_USAGE))
        return
    done = await context.services.promos.redeem(user.id, args[0])
    days = "1 day" if done.days == 1 else f"{done.days} days"
    await message.reply_html(
        f"🎉 Promo code {escape(done.code)} redeemed: {days} of <b>{escape(done.plan)}</b>.\n"
        f"{license_line(done.license)}"
    )


async def promo_create(update: Update, context: TradewindContext) -> None:
    """Create a code worth DAYS for MAX_USES traders, valid VALID_DAYS (or forever)."""
    actor, message = sender(update)
    args = context.args or []
    numbers = args[1:4] if len(args) == 5 else args[1:3]  # DAYS MAX_USES [VALID_DAYS]
    if not 3 <= len(args) <= 5 or not all(looks_numeric(n) for n in numbers):
        await message.reply_html(escape(CREATE_USAGE))
        return
    code, days, uses, *rest = args
    valid = rest.pop(0) if rest and (len(rest) == 2 or looks_numeric(rest[0])) else None
    promo = await context.services.promos.create(
        actor.id,
        code,
        whole_number(days, "DAYS", 7, CREATE_USAGE),
        whole_number(uses, "MAX_USES", 100, CREATE_USAGE),
        None if valid is None else whole_number(valid, "VALID_DAYS", 30, CREATE_USAGE),
        rest[0] if rest else None,
    )
    await message.reply_html(f"✅ Created {_line(promo, context.services.clock.now())}")


async def promo_list(update: Update, context: TradewindContext) -> None:
    """List promo codes, newest first, a page at a time."""
    _, message = sender(update)
    page = await context.services.promos.page()
    text, keyboard = render_promos(page, context.services.clock.now())
    await message.reply_html(text, reply_markup=keyboard)


async def promo_list_button(update: Update, context: TradewindContext) -> None:
    """Turn a page of the promo list (`pl:<page>`)."""
    query = update.callback_query
    if query is None:
        return
    parts = callback_parts(update)
    if len(parts) != 2 or not is_id(parts[1]):
        await query.answer("This button is out of date; send /promo_list again.")
        return
    page = await context.services.promos.page(int(parts[1]))
    await query.answer()
    await edit_in_place(update, *render_promos(page, context.services.clock.now()))


async def promo_disable(update: Update, context: TradewindContext) -> None:
    """Stop a code from being redeemed."""
    actor, message = sender(update)
    args = context.args or []
    if len(args) != 1:
        await message.reply_html(escape(DISABLE_USAGE))
        return
    promo = await context.services.promos.disable(actor.id, args[0])
    await message.reply_html(f"🚫 Disabled {_line(promo, context.services.clock.now())}")


def handlers() -> list[Handler]:
    return [
        command("redeem", redeem),
        command("promo_create", promo_create, admin=True),
        command("promo_list", promo_list, admin=True),
        command("promo_disable", promo_disable, admin=True),
        button("pl", promo_list_button, admin=True),
    ]


def render_promos(page: PromoPage, now: datetime) -> tuple[str, InlineKeyboardMarkup | None]:
    lines = [f"<b>Promo codes</b> · {page.total} · page {page.page + 1}/{page.pages}"]
    lines += [_line(promo, now) for promo in page.codes] or [
        "None yet. Create one with /promo_create."
    ]
    buttons = []
    if page.page > 0:
        buttons.append(
            InlineKeyboardButton("◀ Prev", callback_data=callback_data("pl", page.page - 1))
        )
    if page.page + 1 < page.pages:
        buttons.append(
            InlineKeyboardButton("Next ▶", callback_data=callback_data("pl", page.page + 1))
        )
    return "\n".join(lines), InlineKeyboardMarkup([buttons]) if buttons else None


def _line(promo: PromoRecord, now: datetime) -> str:
    until = f"until {promo.valid_until:%Y-%m-%d}" if promo.valid_until else "no expiry"
    state = "disabled" if not promo.active else "expired" if promo.expired(now) else "active"
    return (
        f"<code>{escape(promo.code)}</code> · {promo.days} d of {escape(promo.plan)} · "
        f"{promo.uses}/{promo.max_uses} used · {until} · {state}"
    )
