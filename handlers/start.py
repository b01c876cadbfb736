"""/start, /help and /license: the first things a trader types."""

from __future__ import annotations

from html import escape

from telegram import (
    KeyboardButton,
    ReplyKeyboardMarkup,
    Update,
)

from handlers.base import Handler, command, profile_of, sender
from handlers.context import CommandInfo, TradewindContext
from handlers.render import license_line

COMMANDS = (
    CommandInfo("start", "Register and show the main keyboard"),
    CommandInfo("help", "List the commands you can use", keyboard=True),
    CommandInfo("license", "Your licence and days left", keyboard=True),
)


async def start(update: Update, context: TradewindContext) -> None:
    """Register or refresh the caller, greet them, show their licence and the keyboard."""
    user, message = sender(update)
    registration = await context.services.users.register(profile_of(user, update.effective_chat))
    hello = "Welcome to Tradewind" if registration.is_new else "Welcome back"
    text = (
        f"{hello}, {escape(user.first_name)}!\n"
        "Trade crypto derivatives on your own exchange account, right from this chat, "
        "and get signals from the market scanner.\n\n"
        f"{license_line(registration.license)}\n\n"
        "Send /help for the list of commands."
    )
    await message.reply_html(text, reply_markup=main_keyboard(context))


async def help_command(update: Update, context: TradewindContext) -> None:
    """List the commands the caller may use; admins also see the admin commands."""
    user, message = sender(update)
    is_admin = context.services.access.is_admin(user.id)
    lines = ["<b>Commands</b>"]
    lines += [_help_line(c) for c in context.bot_data.commands if not c.admin]
    admin = [_help_line(c) for c in context.bot_data.commands if c.admin]
    if is_admin and admin:
        lines += ["", "<b>Admin</b>", *admin]
    await message.reply_html("\n".join(lines))


async def license_command(update: Update, context: TradewindContext) -> None:
    """Show the caller's licence state and days left."""
    user, message = sender(update)
    state = await context.services.licenses.state(user.id)
    await message.reply_html(license_line(state))


def handlers() -> list[Handler]:
    return [
        command("start", start),
        command("help", help_command, in_groups=True),
        command("license", license_command),
    ]


def main_keyboard(context: TradewindContext) -> ReplyKeyboardMarkup:
    """The persistent keyboard of the main commands, three to a row."""
    names = [f"/{c.name}" for c in context.bot_data.commands if c.keyboard and not c.admin]
    rows = [names[i : i + 3] for i in range(0, len(names), 3)]
    return ReplyKeyboardMarkup(
        [[KeyboardButton(name) for name in row] for row in rows],
        resize_keyboard=True,
        is_persistent=True,
        input_field_placeholder="Command or /help",
    )


def _help_line(command: CommandInfo) -> str:
    usage = f" {escape(command.usage)}" if command.usage else ""
    return f"/{command.name}{usage} — {escape(command.description)}"
