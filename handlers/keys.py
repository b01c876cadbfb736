"""/keys: a trader's connected accounts, keys masked, with what each venue says about its key
(cannot trade, withdrawals enabled, no IP whitelist); choose, re-check or remove them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from core.errors import DomainError
from core.exchange.errors import AuthFailed, ExchangeError
from handlers.args import is_id
from handlers.base import (
    callback_data,
    callback_parts,
    edit_in_place,
    presser,
    sender,
    typing_action,
)
from handlers.context import TradewindContext
from handlers.render import refused_keys, usdt
from services.accounts import AccountService, AccountView
from services.keys import KeyHealth, KeyHealthService


async def keys(update: Update, context: TradewindContext) -> None:
    """List the caller's accounts, keys masked, with buttons to choose, re-check or remove."""
    user, message = sender(update)
    views = await context.services.accounts.accounts(user.id)
    async with typing_action(update, context):  # the venues are asked about the keys
        health = await context.services.key_health.of_accounts(views)
    await message.reply_html(render_keys(views, health), reply_markup=keys_keyboard(views))


async def keys_button(update: Update, context: TradewindContext) -> None:
    """Act on one of the caller's own accounts, then show the list (or the question) again."""
    user, query = presser(update)
    parts = callback_parts(update)
    if len(parts) != 3 or parts[1] not in KEY_ACTIONS or not is_id(parts[2]):
        await query.answer("This button is not valid any more. Send /keys again.")
        return
    try:
        async with typing_action(update, context):  # a re-check asks the exchange
            notice, text, markup = await _act(
                context.services.accounts,
                context.services.key_health,
                user.id,
                parts[1],
                int(parts[2]),
            )
    except DomainError as err:  # not the presser's account, or removed since
        await query.answer(str(err), show_alert=True)
        return
    await query.answer(notice[:200])
    await edit_in_place(update, text, markup)


KEY_ACTIONS = frozenset({"use", "check", "rm", "rmyes", "rmno"})


async def _act(
    accounts: AccountService, keys: KeyHealthService, user_id: int, action: str, cid: int
) -> tuple[str, str, InlineKeyboardMarkup | None]:
    """Run one /keys action (every service call checks ownership); the notice and next screen."""
    if action == "use":
        notice = f"{(await accounts.make_active(user_id, cid)).label} is now your active account."
    elif action == "check":
        try:
            checked = await keys.recheck(user_id, cid)
            done = checked.connection
            notice = f"{done.account.label} OK — balance {usdt(done.balance.equity)} USDT"
            if checked.health is not None and checked.health.refusal is not None:
                notice = f"{done.account.label}: {checked.health.refusal}"
            elif checked.health is not None and checked.health.flags:
                notice += " · ⚠️ " + ", ".join(checked.health.flags)
        except AuthFailed as err:
            notice = f"{refused_keys(err.exchange)} Remove the account and /connect new keys."
        except ExchangeError as err:
            notice = err.message
    elif action == "rmyes":
        notice = f"Removed {(await accounts.remove(user_id, cid)).label}."
    else:
        view = await accounts.account(user_id, cid)
        if action == "rm":
            question = (
                f"Remove <b>{escape(view.ref.label)}</b>{_key(view, ' (key …{})')}?\n"
                "Tradewind deletes what it stored for it; nothing changes on the exchange."
            )
            yes, no = _key_button("Yes, remove", "rmyes", view), _key_button("No", "rmno", view)
            return "", question, InlineKeyboardMarkup([[yes, no]])
        notice = ""  # "No": back to the list
    views = await accounts.accounts(user_id)
    text = render_keys(views, await keys.of_accounts(views))
    return notice, f"{escape(notice)}\n\n{text}" if notice else text, keys_keyboard(views)


def render_keys(views: Sequence[AccountView], health: Mapping[int, KeyHealth] | None = None) -> str:
    """The /keys message: one entry per account, keys masked, the active one marked, and
    what the venue says is wrong with a key (nothing for a healthy one)."""
    if not views:
        return "No exchange accounts yet. Send /connect to add one (paper needs no keys)."
    lines = ["<b>Your accounts</b>"]
    for view in views:
        mark = "● " if view.active else "○ "
        active = " — <i>active</i>" if view.active else ""
        verified = view.verified_at.strftime("%Y-%m-%d %H:%M UTC") if view.verified_at else "never"
        lines.append(f"{mark}<b>{escape(view.ref.label)}</b>{active}")
        lines.append(
            f"    {_key(view, 'key …{}') or 'no keys'} · added {view.added_at:%Y-%m-%d}"
            f" · verified {verified}"
        )
        lines += _health_lines((health or {}).get(view.ref.credential_id))
    lines.append("\nTrading commands act on the active account.")
    return "\n".join(lines)


def _health_lines(health: KeyHealth | None) -> list[str]:
    if health is None or not health.flags:
        return []
    if health.refusal is not None:
        return ["    ⛔ this key cannot trade: /connect a key with trading enabled"]
    return [f"    ⚠️ {', '.join(health.flags)}: a key without them is safer (/connect a new one)"]


def keys_keyboard(views: Sequence[AccountView]) -> InlineKeyboardMarkup | None:
    rows = [
        [
            _key_button(f"{'● ' if v.active else 'Use '}{v.ref.label}", "use", v),
            _key_button("Re-check", "check", v),
            _key_button("Remove", "rm", v),
        ]
        for v in views
    ]
    return InlineKeyboardMarkup(rows) if rows else None


def _key_button(text: str, action: str, view: AccountView) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text, callback_data=callback_data("keys", action, view.ref.credential_id)
    )


def _key(view: AccountView, template: str) -> str:
    return template.format(escape(view.key_hint)) if view.key_hint else ""
