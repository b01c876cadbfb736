"""/balance, /positions and /orders: what a trader holds on their active account, right now."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from html import escape
from typing import TypeVar

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from handlers.args import is_id
from handlers.base import (
    Handler,
    button,
    callback_data,
    callback_parts,
    command,
    edit_in_place,
    sender,
    typing_action,
)
from handlers.context import CommandInfo, TradewindContext
from handlers.render import level, money, pct, price, quantity, signed, symbol
from services.portfolio import BalanceView, OrderLine, OrdersView, PositionLine, PositionsView

COMMANDS = (
    CommandInfo("balance", "Equity, free margin and unrealised PnL", keyboard=True),
    CommandInfo("positions", "Open positions with PnL, Close and TP/SL buttons", keyboard=True),
    CommandInfo("orders", "Open orders with Cancel buttons", keyboard=True),
)

PAGE_SIZE = 8  # positions or orders per message: keeps text and keyboard small
BEYOND_BOUND = (
    "⚠️ More than the bot reads at once: these are the newest {count}; the exchange's "
    "own site lists the rest."
)
OUT_OF_DATE = "This button is out of date; send the command again."
STABLE = ("USDT", "USDC", "USD")

V = TypeVar("V")
Page = tuple[str, InlineKeyboardMarkup]
Reader = Callable[[int, bool, int], Awaitable[V]]  # (user id, fresh, account id) → view


async def balance(update: Update, context: TradewindContext) -> None:
    """Show equity, available and used margin, unrealised PnL and assets."""
    user, message = sender(update)
    async with typing_action(update, context):  # a cold account reads the exchange
        view = await context.services.portfolio.balance(user.id)
    await message.reply_html(render_balance(view))


async def positions(update: Update, context: TradewindContext) -> None:
    """List open positions with a Close button each and a Refresh button."""
    user, message = sender(update)
    async with typing_action(update, context):
        view = await context.services.portfolio.positions(user.id)
    text, keyboard = render_positions(view, 0)
    await message.reply_html(text, reply_markup=keyboard)


async def orders(update: Update, context: TradewindContext) -> None:
    """List open orders with a Cancel button each."""
    user, message = sender(update)
    async with typing_action(update, context):
        view = await context.services.portfolio.open_orders(user.id)
    text, keyboard = render_orders(view, 0)
    await message.reply_html(text, reply_markup=keyboard)


async def positions_button(update: Update, context: TradewindContext) -> None:
    """Refresh the positions message in place (`pr:<account>:<page>`), or turn its page."""
    portfolio = context.services.portfolio
    await _turn(update, lambda u, f, a: portfolio.positions(u, f, account_id=a), render_positions)


async def orders_button(update: Update, context: TradewindContext) -> None:
    """Refresh the orders message in place (`or:<account>:<page>`), or turn its page."""
    portfolio = context.services.portfolio
    await _turn(update, lambda u, f, a: portfolio.open_orders(u, f, account_id=a), render_orders)


def handlers() -> list[Handler]:
    return [
        command("balance", balance),
        command("positions", positions),
        command("orders", orders),
        button("pr", positions_button),
        button("or", orders_button),
    ]


async def _turn(update: Update, read: Reader[V], render: Callable[[V, int], Page]) -> None:
    """Re-read (fresh for Refresh, cached for a page turn) and edit the message in place.

    The data names the account the list showed; the service refuses it unless it is still
    the presser's active account, so a forwarded or stale list never shows anything else.
    """
    query = update.callback_query
    if query is None:
        return
    parsed = _page_press(callback_parts(update))
    if parsed is None:
        await query.answer(OUT_OF_DATE, show_alert=True)
        return
    account_id, page, cached = parsed
    view = await read(query.from_user.id, not cached, account_id)
    text, keyboard = render(view, page)
    changed = await edit_in_place(update, text, keyboard)
    await query.answer() if changed else await query.answer("Already up to date.")


def _page_press(parts: Sequence[str]) -> tuple[int, int, bool] | None:
    """`prefix:<account>:<page>[:c]` → (account id, page, from cache), or None if garbled."""
    if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "c"):
        return None
    if not (is_id(parts[1]) and is_id(parts[2])):
        return None
    return int(parts[1]), int(parts[2]), len(parts) == 4


def render_balance(view: BalanceView) -> str:
    b = view.balance
    lines = [
        f"<b>Balance</b> · {escape(view.account.label)}",
        f"Equity: <b>{money(b.equity)} USDT</b>",
        f"Available: {money(b.available)} USDT",
        f"Used margin: {money(b.used_margin)} USDT",
        f"Unrealised PnL: {signed(b.unrealised_pnl)} USDT",
    ]
    held = [a for a in b.assets if a.total]
    if held:
        lines += ["", "<b>Assets</b>"]
    for a in held:
        amount = money if a.asset in STABLE else price
        lines.append(
            f"{escape(a.asset)}: {amount(a.total)} (free {amount(a.free)}, in use {amount(a.used)})"
        )
    return "\n".join(lines)


def render_positions(view: PositionsView, page: int) -> Page:
    """One page of positions: text, a Close button each, then paging and Refresh."""
    items, page, pages = _page(view.positions, page)
    head = f"<b>Positions</b> · {escape(view.account.label)}"
    if not items:
        text = f"{head}\n\nNo open positions."
    else:
        count, complete = len(view.positions), view.complete
        upnl = f"uPnL <b>{signed(view.unrealised_pnl)} USDT</b>"
        summary = f"{_count(count, complete)} open · {upnl}{_page_note(page, pages)}"
        blocks = [_position(n, line) for n, line in enumerate(items, page * PAGE_SIZE + 1)]
        text = "\n\n".join([f"{head}\n{summary}{_bound(count, complete)}", *blocks])
    rows = [
        [
            _key(
                f"Close {line.position.symbol} {line.position.side}",
                callback_data("cl", line.market_id),
            )
        ]
        for line in items
    ]
    first, account = page * PAGE_SIZE + 1, view.account.credential_id
    # Each position's TP/SL keys under the Close buttons; one Refresh (and paging) last.
    rows += [_manage_keys(n, account, line.market_id) for n, line in enumerate(items, first)]
    rows.append(_navigation("pr", view.account.credential_id, page, pages))
    return text, InlineKeyboardMarkup(rows)


def _manage_keys(n: int, account_id: int, market_id: str) -> list[InlineKeyboardButton]:
    """Change TP, change SL, SL to break-even, remove TP/SL (handled in handlers.manage)."""
    return [
        _key(f"{n}. TP", callback_data("mt", account_id, market_id)),
        _key(f"{n}. SL", callback_data("ms", account_id, market_id)),
        _key(f"{n}. SL→BE", callback_data("mb", account_id, market_id)),
        _key(f"{n}. ✖ TP/SL", callback_data("mx", account_id, market_id)),
    ]


def render_orders(view: OrdersView, page: int) -> Page:
    """One page of open orders: text, a Cancel button each, then paging and Refresh."""
    items, page, pages = _page(view.orders, page)
    head = f"<b>Open orders</b> · {escape(view.account.label)}"
    if not items:
        text = f"{head}\n\nNo open orders."
    else:
        blocks = [_order(n, line) for n, line in enumerate(items, page * PAGE_SIZE + 1)]
        count, note = len(view.orders), _page_note(page, pages)
        summary = f"{_count(count, view.complete)} open{note}{_bound(count, view.complete)}"
        text = "\n\n".join([f"{head}\n{summary}", *blocks])
    first = page * PAGE_SIZE + 1
    rows = [
        [_key(f"Cancel {n}. {line.order.symbol}", callback_data("co", line.order.order_id))]
        for n, line in enumerate(items, first)
    ]
    rows.append(_navigation("or", view.account.credential_id, page, pages))
    return text, InlineKeyboardMarkup(rows)


def _position(n: int, line: PositionLine) -> str:
    p, tick = line.position, line.market.tick_size if line.market else None
    return (
        f"<b>{n}. {symbol(p.symbol)}</b> · {p.side.upper()} "
        f"{quantity(p.qty)} · {p.leverage}×\n"
        f"Entry {price(p.entry_price, tick)} · mark {price(p.mark_price, tick)}\n"
        f"uPnL <b>{signed(p.unrealised_pnl)} USDT</b> ({pct(p.pnl_pct)} of margin)\n"
        f"Liq. {level(p.liquidation_price, tick)} · TP {level(p.take_profit, tick)} · "
        f"SL {level(p.stop_loss, tick)}{_trailing(p.trailing_distance, tick)}"
    )


def _trailing(distance: Decimal | None, tick: Decimal | None) -> str:
    return f" · trailing {price(distance, tick)}" if distance else ""


def _order(n: int, line: OrderLine) -> str:
    o, tick = line.order, line.market.tick_size if line.market else None
    size = quantity(o.qty) if o.qty else "whole position"
    at = f" @ {price(o.price, tick)}" if o.price is not None else ""
    triggers = [f"TP {price(v, tick)}" for v in [o.take_profit] if v]  # Bybit: 0 is none
    triggers += [f"SL {price(v, tick)}" for v in [o.stop_loss] if v]
    details = [f"filled {quantity(o.filled_qty)}", *triggers]
    if o.reduce_only:
        details.append("reduce-only")
    ident = (o.client_order_id or o.order_id)[:10]
    details.append(f"id {escape(ident)}")
    return (
        f"<b>{n}. {symbol(o.symbol)}</b> · {o.side.upper()} {o.order_type.upper()} "
        f"{size}{at}\n{' · '.join(details)}"
    )


def _count(shown: int, complete: bool) -> str:
    """How many there are: exact, or "more than" when the read stopped at its bound."""
    return str(shown) if complete else f"More than {shown:,}"


def _bound(shown: int, complete: bool) -> str:
    return "" if complete else "\n" + BEYOND_BOUND.format(count=f"{shown:,}")


def _page(items: Sequence[V], page: int) -> tuple[Sequence[V], int, int]:
    """The items of `page` (clamped to the pages there are now), the page, and the count."""
    pages = max(1, -(-len(items) // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    return items[page * PAGE_SIZE : (page + 1) * PAGE_SIZE], page, pages


def _page_note(page: int, pages: int) -> str:
    return f" · page {page + 1}/{pages}" if pages > 1 else ""


def _navigation(prefix: str, account_id: int, page: int, pages: int) -> list[InlineKeyboardButton]:
    """◀ and ▶ turn pages from the cache; Refresh re-reads the exchange."""
    row = [_key("🔄 Refresh", callback_data(prefix, account_id, page))]
    if page > 0:
        row.insert(0, _key("◀", callback_data(prefix, account_id, page - 1, "c")))
    if page + 1 < pages:
        row.append(_key("▶", callback_data(prefix, account_id, page + 1, "c")))
    return row


def _key(label: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=data)
