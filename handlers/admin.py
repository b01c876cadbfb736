"""/admin, /stats and /users: the business at a glance, and a card per trader."""

from __future__ import annotations

from datetime import datetime
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from core.errors import InvalidInput
from handlers.args import is_id
from handlers.base import (
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
from handlers.render import licence_about, split_message
from services.analytics import Dashboard, Stats, SymbolTotal, UserTotal
from services.user_admin import GRANT_DAYS, USAGE, UserBrief, UserCard

COMMANDS = (
    CommandInfo("admin", "Users, licences, revenue and today's activity", admin=True),
    CommandInfo("stats", "Growth, top traders, symbols, promos and revenue", admin=True),
    CommandInfo("users", "Find a user; grant, revoke, block", usage="ID|NAME", admin=True),
)

# adm:<action>:<user_id>; card, grant (asks), revoke, block, unblock;
# adm:granted:<user_id>:<licence mark> (the confirmed grant)
CARD = "adm"
BAD_BUTTON = "This button is out of date; send /users again."
GRANTED_ALREADY = "Already granted from this card; it now shows the current licence."


async def admin(update: Update, context: TradewindContext) -> None:
    """Show the dashboard."""
    if update.effective_message is not None:
        dashboard = await context.services.analytics.dashboard()
        await update.effective_message.reply_html(render_dashboard(dashboard))


async def stats(update: Update, context: TradewindContext) -> None:
    """Show the longer report, split if it runs past one message."""
    if update.effective_message is not None:
        report = await context.services.analytics.stats()
        for chunk in split_message(render_stats(report)):
            await update.effective_message.reply_html(chunk)


async def users(update: Update, context: TradewindContext) -> None:
    """Find a user by id or username: one match gets a card, several a list to pick from."""
    _, message = sender(update)
    found = await context.services.user_admin.search(" ".join(context.args or []))
    if found.card is not None:
        await message.reply_html(render_card(found.card), reply_markup=card_buttons(found.card))
    else:
        await message.reply_html(render_matches(found.matches), reply_markup=pick(found.matches))


async def card_button(update: Update, context: TradewindContext) -> None:
    """Show a card or act on it (revoke, block, unblock), then redraw it. Grant asks first:
    its confirmation names the licence it was asked over, so it grants once however often
    it is pressed."""
    actor, query = presser(update)
    parts = callback_parts(update)
    action = parts[1] if len(parts) > 1 else ""
    if len(parts) != (4 if action == "granted" else 3) or not is_id(parts[2]):
        raise InvalidInput(BAD_BUTTON)
    user_id = int(parts[2])
    service = context.services.user_admin
    if action in ("card", "grant"):
        card = await service.card(user_id)
    elif action == "granted":
        card, granted = await service.grant_from_card(actor.id, user_id, parts[3])
        if not granted:
            await query.answer(GRANTED_ALREADY, show_alert=True)
            await edit_in_place(update, render_card(card), card_buttons(card))
            return
    elif action == "revoke":
        card = await service.revoke(actor.id, user_id)
    elif action in ("block", "unblock"):
        card = await service.set_blocked(actor.id, user_id, action == "block")
    else:
        raise InvalidInput(BAD_BUTTON)
    await query.answer()
    if action == "grant":
        await edit_in_place(update, render_grant_question(card), grant_buttons(card))
    else:
        await edit_in_place(update, render_card(card), card_buttons(card))


def handlers() -> list[Handler]:
    return [
        command("admin", admin, admin=True),
        command("stats", stats, admin=True),
        command("users", users, admin=True),
        button(CARD, card_button, admin=True),
    ]


def render_dashboard(dashboard: Dashboard) -> str:
    c = dashboard.counts
    revenue = ", ".join(f"{n(v)} {escape(cur)}" for cur, v in c.revenue_month.items()) or "none"
    return "\n".join(
        [
            f"<b>Tradewind</b> · {_when(dashboard.as_of)}",
            "",
            f"<b>Users</b>: {n(c.users_total)} · active 24 h {n(c.active_24h)} · "
            f"7 d {n(c.active_7d)} · new this week {n(c.new_this_week)}",
            f"<b>Licences</b>: {n(c.licenses_active)} active · "
            f"{n(c.expiring_24h)} expiring in 24 h",
            f"<b>Revenue this month</b>: {revenue}",
            f"<b>Today</b>: {n(c.signals_today)} signals · {n(c.autotrades_today)} auto-trades",
            f"<b>Open positions</b>: {n(c.open_positions)}",
            f"<b>Undeliverable messages</b>: {n(c.dead_letters)}",
            "",
            "More: /stats · /users NAME",
        ]
    )


def render_stats(report: Stats) -> str:
    d = report.data
    lines = [f"<b>Statistics</b> · {_when(report.as_of)}", ""]
    lines.append(f"<b>New users</b>, last {report.days} days: {n(sum(c for _, c in d.growth))}")
    lines += [f"{day:%m-%d} {n(count)}" for day, count in d.growth] or ["none"]
    lines += ["", "<b>Top traders by realised PnL</b> (all time)"]
    lines += [_trader(t, f"{t.pnl:+,.2f} USDT") for t in d.top_pnl] or ["no closed trades yet"]
    lines += ["", "<b>Top traders by volume</b> (all time)"]
    lines += [_trader(t, f"{t.volume:,.0f} USDT") for t in d.top_volume] or ["none"]
    lines += ["", "<b>Best symbols</b> (all time)"]
    lines += [_symbol(s) for s in d.best_symbols] or ["none"]
    lines += ["", "<b>Worst symbols</b>"]
    lines += [_symbol(s) for s in d.worst_symbols] or ["none"]
    lines += ["", f"<b>Promo codes</b> · {n(d.redemptions_30d)} redemptions in 30 days"]
    lines += [
        f"<code>{escape(p.code)}</code> {p.uses}/{p.max_uses} · {p.days} d {escape(p.plan)}"
        + ("" if p.active else " · disabled")
        for p in d.promos
    ] or ["none"]
    lines += ["", "<b>Revenue this month</b> by plan"]
    lines += [
        f"{escape(r.plan)}: {n(r.amount)} {escape(r.currency)} from {n(r.payments)} payments"
        for r in d.revenue_month
    ] or ["none"]
    sources = " · ".join(f"{escape(s)} {n(c)}" for s, c in d.licenses_by_source.items())
    lines += ["", f"<b>Active licences by source</b>: {sources or 'none'}"]
    return "\n".join(lines)


def render_card(card: UserCard) -> str:
    user = card.user
    name = escape(user.first_name or "—")
    handle = f" @{escape(user.username)}" if user.username else ""
    flags = []
    if user.is_blocked:
        flags.append("<b>blocked</b>")
    if not user.is_active:
        flags.append("has blocked the bot")
    lines = [
        f"<b>{name}</b>{handle} · <code>{user.user_id}</code>",
        f"Joined {user.created_at:%Y-%m-%d}, last seen {_when(user.last_seen_at)}",
        licence_about(card.license),
    ]
    if card.totals is not None:
        t = card.totals
        lines.append(
            f"Trades: {n(t.trades)} ({n(t.wins)} won) · PnL {t.pnl:+,.2f} USDT · "
            f"volume {t.volume:,.0f} USDT"
        )
    else:
        lines.append("Trades: none closed yet")
    if flags:
        lines.append("Status: " + ", ".join(flags))
    return "\n".join(lines)


def card_buttons(card: UserCard) -> InlineKeyboardMarkup:
    uid = card.user.user_id
    block = "unblock" if card.user.is_blocked else "block"
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Grant 30 d", callback_data=callback_data(CARD, "grant", uid)),
                InlineKeyboardButton("Revoke", callback_data=callback_data(CARD, "revoke", uid)),
                InlineKeyboardButton(block.title(), callback_data=callback_data(CARD, block, uid)),
            ]
        ]
    )


def render_grant_question(card: UserCard) -> str:
    return f"{render_card(card)}\n\n<b>Grant {GRANT_DAYS} more days</b> to this trader?"


def grant_buttons(card: UserCard) -> InlineKeyboardMarkup:
    uid, mark = card.user.user_id, card.licence_mark
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    f"✅ Grant {GRANT_DAYS} d",
                    callback_data=callback_data(CARD, "granted", uid, mark),
                ),
                InlineKeyboardButton("Back", callback_data=callback_data(CARD, "card", uid)),
            ]
        ]
    )


def render_matches(matches: list[UserBrief]) -> str:
    lines = [f"<b>{len(matches)} users match</b> (pick one):"]
    lines += [f"{_brief(m)} · <code>{m.user_id}</code>" for m in matches]
    lines.append(escape(USAGE))
    return "\n".join(lines)


def pick(matches: list[UserBrief]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(_label(m), callback_data=callback_data(CARD, "card", m.user_id))]
            for m in matches
        ]
    )


def n(value: int) -> str:
    """1234 → 1,234."""
    return f"{value:,}"


def _label(user: UserBrief) -> str:
    """A button label (plain text, not HTML)."""
    name = f"@{user.username}" if user.username else user.first_name or str(user.user_id)
    return name + (" (blocked)" if user.is_blocked else "")


def _brief(user: UserBrief) -> str:
    return escape(_label(user))


def _trader(total: UserTotal, figure: str) -> str:
    name = f"@{total.username}" if total.username else total.first_name or str(total.user_id)
    return f"{escape(name)} · {figure} · {n(total.trades)} trades"


def _symbol(total: SymbolTotal) -> str:
    rate = total.wins / total.trades if total.trades else 0.0
    return (
        f"{escape(total.symbol)}: {total.pnl:+,.2f} USDT · {n(total.trades)} trades · "
        f"{rate:.0%} won · volume {total.volume:,.0f}"
    )


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
