"""`tradewind rotate-key`: every stored secret moves to the newest key in one transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.maintenance import rotate_key
from core.config import Settings
from core.crypto import SecretBox, SecretContext, SecretError, generate_key, load_master_keys
from db.repositories.credentials import CredentialRepository, NewCredential
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.keys import rotate_secrets

NOW = datetime(2026, 5, 1, tzinfo=UTC)


async def _seed(store: Store, box: SecretBox, count: int) -> None:
    users, creds = UserRepository(store), CredentialRepository(store)
    for uid in range(1, count + 1):
        await users.upsert(UserProfile(uid, uid, f"U{uid}"), NOW)
        ctx = SecretContext(uid, "bybit", "demo")
        await creds.upsert(
            NewCredential(
                uid, "bybit", "demo", box.encrypt(f"key{uid}", ctx),
                box.encrypt(f"secret{uid}", ctx), None, f"{uid:04d}",
            ),
            NOW,
        )  # fmt: skip


async def test_rotate_key_command_moves_every_secret_to_a_new_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(db_path=tmp_path / "t.db", master_key_file=tmp_path / "master.key")
    old_keys = load_master_keys(None, settings.master_key_file)
    async with Store(settings.db_path) as store:
        await _seed(store, SecretBox(old_keys), 25)

    assert await rotate_key(settings) == 0
    assert "Re-encrypted 25 stored credentials" in capsys.readouterr().out

    new_keys = load_master_keys(None, settings.master_key_file)
    assert len(new_keys) == 2 and new_keys[1] == old_keys[0]
    newest_only = SecretBox(new_keys[:1])
    async with Store(settings.db_path) as store:
        for record in await CredentialRepository(store).for_user(7):
            ctx = SecretContext(7, "bybit", "demo")
            assert newest_only.decrypt(record.api_secret_enc, ctx) == "secret7"
            assert newest_only.is_current(record.api_key_enc)


async def test_rotation_is_all_or_nothing(tmp_path: Path) -> None:
    old, stranger, new = generate_key(), generate_key(), generate_key()
    async with Store(tmp_path / "t.db") as store:
        await _seed(store, SecretBox([old]), 3)
        await _seed_foreign(store, SecretBox([stranger]))
        before = await store.fetchall("t", "SELECT api_key_enc FROM api_credentials ORDER BY id")
        with pytest.raises(SecretError):
            await rotate_secrets(store, SecretBox([new, old]))
        after = await store.fetchall("t", "SELECT api_key_enc FROM api_credentials ORDER BY id")
    assert [r[0] for r in before] == [r[0] for r in after]


async def _seed_foreign(store: Store, box: SecretBox) -> None:
    """A credential encrypted under a key the rotation does not have."""
    await UserRepository(store).upsert(UserProfile(99, 99, "X"), NOW)
    ctx = SecretContext(99, "okx", "live")
    await CredentialRepository(store).upsert(
        NewCredential(99, "okx", "live", box.encrypt("k", ctx), box.encrypt("s", ctx), None, "k"),
        NOW,
    )
