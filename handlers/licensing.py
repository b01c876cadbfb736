"""/grant, /revoke and /licenses: admins manage who may trade."""

from __future__ import annotations

from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from handlers.args import is_id, whole_number
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
from handlers.render import licence_about
from services.licenses import LISTS, LicensePage

COMMANDS = (
    CommandInfo("grant", "Give a trader licence days", usage="USER DAYS [PLAN]", admin=True),
    CommandInfo("revoke", "End a trader's licence now", usage="USER [REASON]", admin=True),
    CommandInfo("licenses", "List licences", usage="[active|expiring|expired]", admin=True),
)

GRANT_USAGE = (
    "Usage: /grant USER DAYS [PLAN] — USER is a numeric id or @username, e.g. /grant @alice 30 pro"
)
REVOKE_USAGE = "Usage: /revoke USER [REASON] — e.g. /revoke @alice chargeback"
LICENSES_USAGE = "Usage: /licenses [active|expiring|expired]"
MAX_REASON = 200
TITLES = {"active": "Active licences", "expiring": "Expiring within 3 days", "expired": "Ended"}


async def grant(update: Update, context: TradewindContext) -> None:
    """Add licence days to a trader, from the later of now and their current end."""
    actor, message = sender(update)
    args = context.args or []
    if len(args) not in (2, 3):
        await message.reply_html(escape(GRANT_USAGE))
        return
    count = whole_number(args[1], "DAYS", 30, GRANT_USAGE)
    licenses = context.services.licenses
    user = await licenses.find_user(args[0])
    plan = args[2] if len(args) == 3 else licenses.plans.default
    state = await licenses.grant(actor.id, user.user_id, count, plan)
    who = _who(user.user_id, user.username, user.first_name)
    days = "1 day" if count == 1 else f"{count} days"
    await message.reply_html(f"✅ Granted {days} to {who}.\n{licence_about(state)}")


async def revoke(update: Update, context: TradewindContext) -> None:
    """End a trader's licence now; they keep closing, cancelling and viewing."""
    actor, message = sender(update)
    args = context.args or []
    if not args:
        await message.reply_html(escape(REVOKE_USAGE))
        return
    reason = " ".join(args[1:])
    if len(reason) > MAX_REASON:
        await message.reply_html(f"The reason can be at most {MAX_REASON} characters.")
        return
    licenses = context.services.licenses
    user = await licenses.find_user(args[0])
    await licenses.revoke(actor.id, user.user_id, reason)
    who = _who(user.user_id, user.username, user.first_name)
    await message.reply_html(
        f"🚫 Revoked the licence of {who}. They can still close, cancel and view."
    )


async def licenses_command(update: Update, context: TradewindContext) -> None:
    """List active, expiring or ended licences, a page at a time."""
    _, message = sender(update)
    args = context.args or []
    kind = args[0].lower() if args else "active"
    if len(args) > 1 or kind not in LISTS:
        await message.reply_html(escape(LICENSES_USAGE))
        return
    text, keyboard = render_page(await context.services.licenses.listing(kind))
    await message.reply_html(text, reply_markup=keyboard)


async def licenses_button(update: Update, context: TradewindContext) -> None:
    """Turn a page of the licence list (`lic:<kind>:<page>`)."""
    query = update.callback_query
    if query is None:
        return
    parts = callback_parts(update)
    if len(parts) != 3 or parts[1] not in LISTS or not is_id(parts[2]):
        await query.answer("This button is out of date; send /licenses again.")
        return
    page = await context.services.licenses.listing(parts[1], int(parts[2]))
    await query.answer()
    await edit_in_place(update, *render_page(page))


def handlers() -> list[Handler]:
    return [
        command("grant", grant, admin=True),
        command("revoke", revoke, admin=True),
        command("licenses", licenses_command, admin=True),
        button("lic", licenses_button, admin=True),
    ]


def render_page(page: LicensePage) -> tuple[str, InlineKeyboardMarkup | None]:
    """One line per licence with Prev/Next buttons."""
    header = f"<b>{TITLES[page.kind]}</b> · {page.total} · page {page.page + 1}/{page.pages}"
    lines = [header]
    for e in page.entries:
        end = "revoked, was until" if e.revoked else "until" if e.active else "ended"
        lines.append(
            f"{_who(e.user_id, e.username, e.first_name)} · {escape(e.plan)} · "
            f"{end} {e.end_at:%Y-%m-%d %H:%M}"
        )
    if not page.entries:
        lines.append("None.")
    buttons = []
    if page.page > 0:
        data = callback_data("lic", page.kind, page.page - 1)
        buttons.append(InlineKeyboardButton("◀ Prev", callback_data=data))
    if page.page + 1 < page.pages:
        data = callback_data("lic", page.kind, page.page + 1)
        buttons.append(InlineKeyboardButton("Next ▶", callback_data=data))
    return "\n".join(lines), InlineKeyboardMarkup([buttons]) if buttons else None


def _who(user_id: int, username: str | None, first_name: str) -> str:
    handle = f" @{escape(username)}" if username else ""
    return f"{escape(first_name)}{handle} ({user_id})"
