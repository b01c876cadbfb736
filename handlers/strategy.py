"""/strategy and /set: how a trader's positions are sized, protected and automated."""

from __future__ import annotations

from decimal import Decimal
from html import escape

from telegram import Update

from handlers.base import Handler, command, sender
from handlers.context import CommandInfo, TradewindContext
from services.ladder_rungs import describe
from services.strategy import KEYS, SettingChange, StrategyRecord

COMMANDS = (
    CommandInfo("strategy", "Your sizing, TP/SL and auto-trade settings", keyboard=True),
    CommandInfo("set", "Change one strategy setting", usage="KEY VALUE"),
)

USAGE = (
    f"Usage: /set KEY VALUE, e.g. /set leverage 10 or /set allow BTC,ETH.\nKeys: {', '.join(KEYS)}."
)


async def strategy(update: Update, context: TradewindContext) -> None:
    """Show the caller's strategy settings."""
    user, message = sender(update)
    record = await context.services.strategy.settings(user.id)
    await message.reply_html(render_strategy(record))


async def set_command(update: Update, context: TradewindContext) -> None:
    """Change one setting: `/set KEY VALUE`; refusals name the accepted values."""
    user, message = sender(update)
    args = context.args or []
    if len(args) < 2:
        await message.reply_html(escape(USAGE))
        return
    services = context.services
    change = await services.strategy.change(
        user.id, args[0], " ".join(args[1:]), accounts=services.accounts, market=services.market
    )
    await message.reply_html(render_change(change))


def handlers() -> list[Handler]:
    return [command("strategy", strategy), command("set", set_command)]


def render_strategy(s: StrategyRecord) -> str:
    """The settings, one per line, with the keys that change them."""
    if s.risk_pct is not None:
        size = f"<b>{_num(s.risk_pct)}%</b> of equity per trade (risk_pct)"
    else:
        size = f"<b>{_num(s.size_usdt or Decimal(0))} USDT</b> per trade (size_usdt)"
    auto = "on" if s.auto_trade else "off"
    lines = [
        "<b>Your strategy</b>",
        f"Size: {size}",
        f"Leverage: <b>{s.leverage}×</b>, capped at each market's maximum (leverage)",
        f"Take profit: <b>{_num(s.tp_pct)}%</b> (tp_pct) · Stop loss: <b>{_num(s.sl_pct)}%</b>"
        " (sl_pct)",
        f"Max open positions: <b>{s.max_positions}</b> (max_positions)",
        f"Auto-trade: <b>{auto}</b> (auto_trade), on signals scoring ≥ <b>{s.min_score:.2f}</b>"
        " (min_score)",
        f"Auto-trade skips a signal once the price moved over <b>{_num(s.max_drift_pct)}%</b>"
        f" (max_drift_pct) or it is older than <b>{s.max_signal_age_s} s</b> (max_signal_age_s)",
        f"Limit orders cancelled after <b>{s.limit_order_ttl_min} min</b> (limit_order_ttl_min),"
        f" post-only <b>{_on(s.post_only)}</b> (post_only)",
        f"Auto-trade enters with a <b>{s.autotrade_entry}</b> order (autotrade_entry)",
        f"Trailing stop by default: <b>{_pct_or_off(s.trail_pct)}</b> (trail_pct), from a profit"
        f" of <b>{_pct_or_off(s.trail_activation_pct, 'none')}</b> (trail_activation_pct)",
        f"Take-profit ladder: <b>{escape(describe(s.tp_ladder))}</b> (tp_ladder), stop loss to"
        f" break-even after its first part: <b>{'on' if s.ladder_breakeven else 'off'}</b>"
        " (ladder_breakeven)",
        f"Allowed symbols: {_symbols(s.allow_symbols, 'all')} (allow)",
        f"Denied symbols: {_symbols(s.deny_symbols, 'none')} (deny)",
        f"Timezone of your reports: <b>{escape(s.timezone)}</b> (tz)",
        f"Daily report (weekly on Mondays) at: <b>{escape(s.report_time or 'off')}</b>"
        " (report_time)",
        "",
        "Change one with /set KEY VALUE, e.g. <code>/set tp_pct 4</code>.",
    ]
    return "\n".join(lines)


def render_change(change: SettingChange) -> str:
    """Confirm a saved change with the setting's new value."""
    s, key = change.record, change.key
    values = {
        "size_usdt": f"{_num(s.size_usdt or Decimal(0))} USDT per trade",
        "risk_pct": f"{_num(s.risk_pct or Decimal(0))}% of equity per trade",
        "leverage": f"{s.leverage}×",
        "tp_pct": f"{_num(s.tp_pct)}%",
        "sl_pct": f"{_num(s.sl_pct)}%",
        "max_positions": str(s.max_positions),
        "auto_trade": "on" if s.auto_trade else "off",
        "min_score": f"{s.min_score:.2f}",
        "limit_order_ttl_min": f"{s.limit_order_ttl_min} min",
        "post_only": _on(s.post_only),
        "autotrade_entry": s.autotrade_entry,
        "max_drift_pct": f"{_num(s.max_drift_pct)}%",
        "max_signal_age_s": f"{s.max_signal_age_s} s",
        "allow": _symbols(s.allow_symbols, "all symbols"),
        "deny": _symbols(s.deny_symbols, "none"),
        "tz": escape(s.timezone),
        "report_time": escape(s.report_time or "off"),
        "trail_pct": _pct_or_off(s.trail_pct),
        "trail_activation_pct": _pct_or_off(s.trail_activation_pct, "off (trailing at once)"),
        "tp_ladder": escape(describe(s.tp_ladder)),
        "ladder_breakeven": "on" if s.ladder_breakeven else "off",
    }
    note = f"\n{escape(change.note)}" if change.note else ""
    return f"✅ {key} is now <b>{values[key]}</b>.{note}\nSee everything with /strategy."


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _num(value: Decimal) -> str:
    """A setting as typed: 50, 1.5, 0.25 (no exponent, no trailing zeros)."""
    text = f"{value:,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _pct_or_off(value: Decimal | None, off: str = "off") -> str:
    return off if value is None else f"{_num(value)}%"


def _symbols(symbols: tuple[str, ...], empty: str) -> str:
    """BTC, ETH: unified symbols by their base, for reading."""
    if not symbols:
        return empty
    return escape(", ".join(s.split("/")[0] for s in symbols))
