"""Every admin command and every admin button, used by a trader: refused, audited, no change.

The tables are built from the running bot itself (each feature's `COMMANDS` marked admin,
and every prefix `button(..., admin=True)` registered), so a new admin command or button is
covered without touching this file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from db.store import Store
from handlers.base import ADMIN_BUTTON_PREFIXES, ADMIN_ONLY
from handlers.registry import FEATURES
from tests.harness import BotHarness, running_bot, texts

ADMIN = 99
TRADER = 42
VICTIM = 43

ADMIN_COMMANDS = sorted(info.name for f in FEATURES for info in f.COMMANDS if info.admin)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        await harness.send(TRADER, "/start")
        await harness.send(VICTIM, "/start")
        yield harness


async def _row_counts(store: Store) -> dict[str, int]:
    tables = await store.fetchall(
        "t.tables", "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    )
    counts = {}
    for (name,) in tables:
        counts[name] = await store.fetchval("t.count", f'SELECT COUNT(*) FROM "{name}"')
    return counts


async def _licences_and_flags(store: Store) -> list[Any]:
    """What a refused admin action could change without adding a row."""
    rows = await store.fetchall(
        "t.state",
        "SELECT u.id, u.is_blocked, l.end_at, l.active FROM users u "
        "LEFT JOIN user_licenses l ON l.user_id = u.id ORDER BY u.id",
    )
    return [tuple(row) for row in rows]


def test_the_tables_cover_the_admin_features() -> None:
    assert {"admin", "stats", "users", "broadcast", "perf"} <= set(ADMIN_COMMANDS)


@pytest.mark.parametrize("name", ADMIN_COMMANDS)
async def test_admin_command_is_refused_to_a_trader(bot: BotHarness, name: str) -> None:
    store = bot.store
    before, state = await _row_counts(store), await _licences_and_flags(store)
    # Arguments that would act on another user if the sender were an admin.
    (reply,) = texts(await bot.send(TRADER, f"/{name} {VICTIM} 30 1 pro"))
    assert reply == ADMIN_ONLY
    after = await _row_counts(store)
    assert after.pop("audit_log") == before.pop("audit_log") + 1
    assert after.pop("processed_updates") == before.pop("processed_updates") + 1  # its id
    assert after == before
    assert await _licences_and_flags(store) == state
    (entry,) = (await bot.services.audit.recent())[:1]
    assert (entry.actor_id, entry.action, entry.target, entry.ok) == (
        TRADER,
        "refused",
        f"/{name}",
        False,
    )


async def test_every_admin_button_is_refused_to_a_trader(bot: BotHarness) -> None:
    assert {"adm", "bc"} <= ADMIN_BUTTON_PREFIXES
    store = bot.store
    # A real draft the "Confirm" press below would send, were the presser its admin.
    await bot.send(ADMIN, "/broadcast Hello everyone")
    draft = await store.fetchval("t.draft", "SELECT MAX(id) FROM broadcasts")
    realistic = {"adm": f"adm:granted:{VICTIM}:n0", "bc": f"bc:go:{draft}"}
    message = (await bot.send(TRADER, "/help"))[-1].result
    assert isinstance(message, dict)
    for prefix in sorted(ADMIN_BUTTON_PREFIXES):
        before, state = await _row_counts(store), await _licences_and_flags(store)
        calls = await bot.press(TRADER, message, realistic.get(prefix, f"{prefix}:{VICTIM}:30"))
        (answer,) = [c for c in calls if c.method == "answerCallbackQuery"]
        assert answer.params["text"] == ADMIN_ONLY, prefix
        assert answer.params.get("show_alert") is True
        assert not texts(calls), prefix  # nothing sent or edited
        after = await _row_counts(store)
        assert after.pop("audit_log") == before.pop("audit_log") + 1, prefix
        assert after.pop("processed_updates") == before.pop("processed_updates") + 1, prefix
        assert after == before, prefix
        assert await _licences_and_flags(store) == state, prefix
        (entry,) = (await bot.services.audit.recent())[:1]
        assert (entry.actor_id, entry.target, entry.ok) == (TRADER, f"button {prefix}", False)
    status = await store.fetchval(
        "t.status", "SELECT status FROM broadcasts WHERE id = ?", (draft,)
    )
    assert status == "draft"
