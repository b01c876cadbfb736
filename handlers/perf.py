"""/perf: how fast the bot is right now, for admins."""

from __future__ import annotations

from html import escape

from telegram import Update

from handlers.base import Handler, command, sender
from handlers.context import CommandInfo, TradewindContext
from handlers.render import duration, split_message
from services.monitoring import PerfSnapshot

COMMANDS = (CommandInfo("perf", "Latency, cache hit rates, DB and job timings", admin=True),)


async def perf(update: Update, context: TradewindContext) -> None:
    """Show a snapshot of command latency, caches, statements and jobs."""
    _, message = sender(update)
    for chunk in split_message(render_perf(context.services.monitoring.snapshot())):
        await message.reply_html(chunk)


def handlers() -> list[Handler]:
    return [command("perf", perf, admin=True)]


def render_perf(snap: PerfSnapshot) -> str:
    lines = [f"<b>Performance</b> · up {duration(snap.uptime_s)}", "", "<b>Commands</b> (ms)"]
    lines += [
        f"/{escape(c.command)}: {c.count}× · p50 {c.p50_ms:.1f} · p95 {c.p95_ms:.1f}"
        f" · p99 {c.p99_ms:.1f}"
        for c in snap.commands
    ] or ["none yet"]
    lines += ["", "<b>Caches</b>"]
    lines += [
        f"{escape(c.name)}: {c.hit_rate:.0%} hits ({c.hits}/{c.hits + c.misses}), {c.size} entries"
        for c in snap.caches
    ] or ["none"]
    lines += ["", "<b>DB statements</b> (by total time)"]
    lines += [
        f"{escape(s.name)}: {s.count}× · mean {s.mean_ms:.2f} ms · total {s.total_ms:.0f} ms"
        for s in snap.statements
    ] or ["none yet"]
    lines += ["", "<b>Jobs</b>"]
    lines += [
        f"{escape(j.name)}: {'ok' if j.ok else 'FAILED'} {duration(j.age_s)} ago"
        f" in {j.duration_ms:.0f} ms"
        for j in snap.jobs
    ] or ["none run yet"]
    return "\n".join(lines)
