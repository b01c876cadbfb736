"""/notify: which notifications a trader receives, and whether they make a sound."""

from __future__ import annotations

from html import escape

from telegram import Message, Update

from handlers.base import Handler, command, sender
from handlers.context import CommandInfo, TradewindContext
from services.notify_settings import USAGE, NotifySettings

COMMANDS = (
    CommandInfo(
        "notify", "Signal, fill and report messages on, silent (no sound) or off; "
        "signals off is /unsubscribe, on or silent subscribes",
        usage="[signals|fills|reports on|off|silent]",
    ),
)  # fmt: skip

TOPIC_TITLES = {
    "signals": "Signals",
    "fills": "Fills, TP/SL and stop-outs",
    "reports": "Reports",
}
SUBSCRIBED = "Signals come while you are subscribed: you are (/unsubscribe stops them)."
NOT_SUBSCRIBED = "Signals come only while you are subscribed: you are not (/subscribe)."
MODE_WORDS = {"on": "on", "off": "off", "silent": "silent (no sound)"}


async def notify(update: Update, context: TradewindContext) -> None:
    """`/notify` shows the settings; `/notify TOPIC MODE` changes one."""
    user, message = sender(update)
    args = context.args or []
    settings = context.services.notify
    if not args:
        subscribed = await _subscribed(user.id, context)
        await message.reply_html(render_settings(await settings.current(user.id), subscribed))
        return
    if len(args) != 2:
        await message.reply_html(escape(USAGE))
        return
    topic = args[0].lower()
    if (topic, args[1].lower()) == ("signals", "off"):
        await _signals_off(user.id, message, context)
        return
    changed = await settings.change(user.id, args[0], args[1])
    done = f"{TOPIC_TITLES[topic]} notifications: <b>{MODE_WORDS[changed.of(topic)]}</b>."
    if topic == "signals" and not await _subscribed(user.id, context):
        score = await context.services.signals.subscribe(user.id)  # on or silent: they come
        done += f" Subscribed, at your minimum score {score:.2f} (/subscribe SCORE changes it)."
    subscribed = await _subscribed(user.id, context)
    await message.reply_html(f"{done}\n\n{render_settings(changed, subscribed)}")


async def _signals_off(user_id: int, message: Message, context: TradewindContext) -> None:
    """One switch decides whether signals come: the subscription. Off here is /unsubscribe;
    on and silent only say how they sound while subscribed."""
    await context.services.signals.unsubscribe(user_id)
    current = await context.services.notify.current(user_id)
    await message.reply_html(
        f"Signals: <b>off</b> — you are unsubscribed, as with /unsubscribe. /subscribe "
        f"resumes them.\n\n{render_settings(current, False)}"
    )


async def _subscribed(user_id: int, context: TradewindContext) -> bool:
    found = await context.services.signals.subscription(user_id)
    return found is not None and found[0]


def handlers() -> list[Handler]:
    return [command("notify", notify)]


def render_settings(settings: NotifySettings, subscribed: bool | None = None) -> str:
    """One line per topic, whether signals come at all, then how to change them."""
    lines = ["<b>Notifications</b>"]
    for topic, label in TOPIC_TITLES.items():
        mode = MODE_WORDS[settings.of(topic)]
        if topic == "signals" and subscribed is False:
            mode = "off"  # whether signals come is the subscription alone
        lines.append(f"{label}: <b>{mode}</b> ({topic})")
    if subscribed is not None:
        lines.append(SUBSCRIBED if subscribed else NOT_SUBSCRIBED)
    lines += ["", escape(USAGE)]
    return "\n".join(lines)
