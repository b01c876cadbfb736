"""Admin commands appear only in admins' command menus; traders see the trader commands."""

from __future__ import annotations

from pathlib import Path

from telegram import BotCommandScopeChat

from bot.offline_api import FakeTelegramState
from tests.harness import BotHarness, running_bot

ADMIN_COMMANDS = {"admin", "grant", "revoke", "users", "stats", "broadcast", "promo_create"}


async def _menu(bot: BotHarness, chat_id: int | None = None) -> set[str]:
    scope = BotCommandScopeChat(chat_id) if chat_id is not None else None
    return {c.command for c in await bot.app.bot.get_my_commands(scope=scope)}


async def test_admins_get_admin_commands_in_their_own_menu_only(tmp_path: Path) -> None:
    state = FakeTelegramState()
    async with running_bot(tmp_path, admin_ids=frozenset({98, 99}), state=state) as bot:
        traders = await _menu(bot)
        assert {"start", "help", "connect", "balance"} <= traders
        assert not traders & ADMIN_COMMANDS
        for admin in (98, 99):
            assert await _menu(bot, admin) >= ADMIN_COMMANDS
            assert traders <= await _menu(bot, admin)
        assert await _menu(bot, 42) == set()  # a trader has no chat scope: the default applies
        scopes = [c.params.get("scope") for c in bot.state.calls_to("setMyCommands")]
        assert {"type": "chat", "chat_id": 98} in scopes and {
            "type": "chat",
            "chat_id": 42,
        } not in scopes

    # 98 is no longer an admin: their admin menu is withdrawn at the next start.
    async with running_bot(tmp_path, admin_ids=frozenset({99}), state=state) as bot:
        assert await _menu(bot, 98) == set()
        assert await _menu(bot, 99) >= ADMIN_COMMANDS
        deleted = [c.params.get("scope") for c in bot.state.calls_to("deleteMyCommands")]
        assert deleted == [{"type": "chat", "chat_id": 98}]
