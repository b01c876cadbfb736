"""/notify: which notifications a trader receives, and whether they make a sound."""

from __future__ import annotations

from html import escape

from telegram import Update

from handlers.base import Handler, command, sender
from handlers.context import CommandInfo, TradewindContext
from services.notify_settings import USAGE, NotifySettings

COMMANDS = (
    CommandInfo(
        "notify", "Turn signal, fill and report notifications on, off or silent",
        usage="[signals|fills|reports on|off|silent]",
    ),
)  # fmt: skip

TOPIC_TITLES = {
    "signals": "Signals",
    "fills": "Fills, TP/SL and stop-outs",
    "reports": "Reports",
}
MODE_WORDS = {"on": "on", "off": "off", "silent": "silent (no sound)"}


async def notify(update: Update, context: TradewindContext) -> None:
    """`/notify` shows the settings; `/notify TOPIC MODE` changes one."""
    user, message = sender(update)
    args = context.args or []
    settings = context.services.notify
    if not args:
        await message.reply_html(render_settings(await settings.current(user.id)))
        return
    if len(args) != 2:
        await message.reply_html(escape(USAGE))
        return
    changed = await settings.change(user.id, args[0], args[1])
    topic = args[0].lower()
    done = f"{TOPIC_TITLES[topic]} notifications: <b>{MODE_WORDS[changed.of(topic)]}</b>."
    await message.reply_html(f"{done}\n\n{render_settings(changed)}")


def handlers() -> list[Handler]:
    return [command("notify", notify)]


def render_settings(settings: NotifySettings) -> str:
    """One line per topic, then how to change them."""
    lines = ["<b>Notifications</b>"]
    for topic, label in TOPIC_TITLES.items():
        lines.append(f"{label}: <b>{MODE_WORDS[settings.of(topic)]}</b> ({topic})")
    lines += ["", escape(USAGE)]
    return "\n".join(lines)
