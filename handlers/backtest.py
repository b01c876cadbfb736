"""/backtest [7d|30d|90d] [SYMBOLS…]: the trader's strategy replayed over the scanner's
signals on stored candles, with progress in one edited message, a Cancel button, and the
result with its equity curve as a picture."""

from __future__ import annotations

import contextlib
import time
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, Update
from telegram.error import TelegramError

from core.errors import InvalidInput
from handlers.args import is_id
from handlers.base import Handler, button, callback_data, callback_parts, command, presser, sender
from handlers.context import CommandInfo, TradewindContext
from services.backtest import SPANS, BacktestCancelled, BacktestFailed, management
from services.backtest_stats import BacktestResult
from services.strategy import StrategyRecord

COMMANDS = (
    CommandInfo(
        "backtest",
        "What your strategy would have done on the scanner's signals",
        usage="[7d|30d|90d] [SYMBOLS…]",
    ),
)
USAGE = (
    "Usage: /backtest [7d|30d|90d] [SYMBOLS…] — e.g. /backtest, /backtest 7d BTC ETH. "
    "Default: 30d over every symbol of the scanner's market, with your /strategy settings."
)
MAX_SYMBOLS = 20
EDIT_EVERY_S = 1.0  # progress edits at most this often (Telegram allows ~1 per second)


async def backtest(update: Update, context: TradewindContext) -> None:
    """Run the caller's strategy over stored candles and send the figures and the chart."""
    user, message = sender(update)
    args = list(context.args or [])
    span = args.pop(0).lower() if args and args[0].lower() in SPANS else "30d"
    if args and (args[0][:1].isdigit() or len(args) > MAX_SYMBOLS):
        raise InvalidInput(
            f"The span is 7d, 30d or 90d, and at most {MAX_SYMBOLS} symbols. {USAGE}"
        )
    service = context.services.backtests
    if service.max_running == 0:
        raise InvalidInput("Backtests are turned off on this bot.")
    try:
        symbols = service.symbols(args)
    except InvalidInput as err:
        raise InvalidInput(f"{err} {USAGE}") from None
    if not symbols:
        raise InvalidInput("The scanner's market has no symbols yet: try again in a minute.")
    settings = await context.services.strategy.settings(user.id)
    run_id = service.begin(user.id)
    head = f"<b>Backtest, last {span}</b> · {len(symbols)} symbol" + (
        "" if len(symbols) == 1 else "s"
    )
    try:
        status = await message.reply_html(f"{head}\nStarting…", reply_markup=_cancel(run_id))
    except BaseException:
        service.release(run_id)
        raise
    shown = _Progress(status, head, run_id)
    try:
        finished = await service.run(run_id, settings, SPANS[span], symbols, shown.update)
    except BacktestCancelled:
        await _edit(status, f"{head}\nCancelled: nothing was kept.")
        return
    except BacktestFailed as err:
        await _edit(status, f"{head}\n{escape(str(err))}")
        return
    await _edit(status, summary(head, finished.result, settings))
    if finished.png is not None:
        photo = InputFile(finished.png, filename=f"backtest-{span}.png")
        await message.reply_photo(photo, caption=caption(span, finished.result), parse_mode="HTML")


async def cancel_button(update: Update, context: TradewindContext) -> None:
    """Stop the presser's own running backtest (`bt:<run>`)."""
    user, query = presser(update)
    parts = callback_parts(update)[1:]
    if len(parts) != 1 or not is_id(parts[0]):
        await query.answer("This button is out of date.")
        return
    if context.services.backtests.cancel(user.id, int(parts[0])):
        await query.answer("Cancelling…")
    else:
        await query.answer("This backtest is over or not yours.")


def handlers() -> list[Handler]:
    return [command("backtest", backtest), button("bt", cancel_button)]


class _Progress:
    """Edits the status message as the run advances, at most once per EDIT_EVERY_S."""

    def __init__(self, status: Message, head: str, run_id: int) -> None:
        self._status, self._head, self._run_id = status, head, run_id
        self._last = 0.0
        self._phase = ""

    async def update(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase == self._phase and now - self._last < EDIT_EVERY_S and done < total:
            return
        self._phase, self._last = phase, now
        share = done * 100 // total if total else 100
        what = "collecting candles" if phase == "candles" else "judging candles"
        text = f"{self._head}\n{share} % · {done}/{total} symbols ({what})"
        await _edit(self._status, text, _cancel(self._run_id))


def _cancel(run_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton("✖ Cancel", callback_data=callback_data("bt", run_id))]]
    )


async def _edit(message: Message, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Edit the status; a failed edit (unchanged text, a deleted message) is not the run's."""
    with contextlib.suppress(TelegramError):
        await message.edit_text(text, parse_mode="HTML", reply_markup=markup)


def summary(head: str, r: BacktestResult, s: StrategyRecord) -> str:
    """The result in words."""
    size = f"{s.size_usdt:,f} USDT" if s.size_usdt is not None else f"{s.risk_pct:,f} % risk"
    lines = [
        f"{head} · {r.start:%Y-%m-%d %H:%M} → {r.end:%Y-%m-%d %H:%M} UTC",
        f"Strategy: {size} × {s.leverage}, TP {s.tp_pct:,f} % / SL {s.sl_pct:,f} %, "
        f"max {s.max_positions} positions, min score {s.min_score:g}",
        f"Signals: {r.signals:,} · trades: {r.trades:,} · win rate {r.win_rate:.0%}",
    ]
    managed = management(s)
    if managed:
        lines.insert(2, f"Managed: {escape(managed)}")
    if r.trades:
        factor = "∞" if r.profit_factor is None else f"{r.profit_factor:.2f}"
        sharpe = "—" if r.sharpe is None else f"{r.sharpe:.2f}"
        lines += [
            f"PnL: <b>{r.pnl:+,.2f} USDT</b> (fees {r.fees:,.2f}) · profit factor {factor} · "
            f"Sharpe {sharpe}",
            f"Max drawdown: {r.max_drawdown:,.2f} USDT ({r.max_drawdown_pct:.1f} % from its "
            f"peak; start {r.capital:,.0f} USDT)",
            "Exits: " + ", ".join(f"{name} {n}" for name, n in r.exits),
        ]
        if r.unfunded:
            lines.append(
                f"Not taken for want of margin: {r.unfunded:,} signals (the "
                f"{r.capital:,.0f} USDT account could not pay their margin)"
            )
        if r.best:
            lines.append("Best: " + ", ".join(f"{_base(k)} {v:+,.2f}" for k, v in r.best))
        if r.worst:
            lines.append("Worst: " + ", ".join(f"{_base(k)} {v:+,.2f}" for k, v in r.worst))
    elif r.signals:
        lines.append(
            f"No trade: none of the {r.signals:,} signals passed your settings "
            "(see /strategy: min_score, allow and deny lists)."
        )
    else:
        lines.append("No signal: the scanner's rules find no breakout in these candles.")
    lines.append(
        "<i>One scan per 5-minute bar; taker fee and slippage on every fill; a bar touching "
        "both the stop and the target (or a ladder part) counts as the stop; a trailing stop "
        "moves at bar closes.</i>"
    )
    return "\n".join(lines)


def caption(span: str, r: BacktestResult) -> str:
    trades = f"{r.trades} trade" + ("" if r.trades == 1 else "s")
    return f"<b>Backtest equity, last {span}</b>: {r.pnl:+,.2f} USDT over {trades}"


def _base(symbol: str) -> str:
    return escape(symbol.split("/")[0])
