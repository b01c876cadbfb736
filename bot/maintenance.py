"""Maintenance commands that run beside (or instead of) the bot."""

from __future__ import annotations

import logging
from pathlib import Path

from core.config import Settings
from core.crypto import SecretBox, add_key_to_file, load_master_keys
from db.store import Store
from services.keys import rotate_secrets

log = logging.getLogger(__name__)


async def rotate_key(settings: Settings) -> int:
    """Re-encrypt every stored secret under the newest master key, in one transaction.

    With a key file, a fresh key is prepended first (older keys stay for decryption);
    with TRADEWIND_MASTER_KEY, the operator puts the new key first in the variable.
    """
    if settings.master_keys:
        keys = list(settings.master_keys)
        print("Using TRADEWIND_MASTER_KEY: its first key becomes the encryption key.")
    else:
        load_master_keys(None, settings.master_key_file)  # creates the file on first run
        add_key_to_file(settings.master_key_file)
        keys = load_master_keys(None, settings.master_key_file)
        print(f"Added a new key to {settings.master_key_file} (older keys kept for decryption).")
    async with Store(settings.db_path) as store:
        count = await rotate_secrets(store, SecretBox(keys))
    print(f"Re-encrypted {count} stored credentials under the newest key.")
    print("Restart a running bot so it loads the new key.")
    return 0


async def check_database(settings: Settings) -> int:
    """Run SQLite's full integrity check on the database; 0 when sound, 1 otherwise."""
    async with Store(settings.db_path) as store:
        problems = await store.check_integrity()
    if not problems:
        print(f"{settings.db_path}: integrity check passed.")
        return 0
    print(f"{settings.db_path}: integrity check found {len(problems)} problems:")
    for problem in problems[:20]:
        print(f"  {problem}")
    return 1


async def backup_database(settings: Settings, target: Path) -> int:
    """Copy the database, live, to `target` and check the copy; 0 when it is sound."""
    async with Store(settings.db_path) as store:
        pages = await store.backup(target)
        version = await store.user_version()
    async with Store(target, readers=1) as copy:
        problems = await copy.check_integrity()
        copied_version = await copy.user_version()
    if problems or copied_version != version:
        print(f"{target}: the copy failed its check: {(problems or ['schema version'])[:3]}")
        return 1
    print(f"Backed up {settings.db_path} to {target} ({pages} pages); integrity check passed.")
    return 0
