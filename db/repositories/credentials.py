"""Exchange API credentials, stored only as SecretBox tokens."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms, from_ms_req, to_ms
from db.store import Row, Tx


@dataclass(slots=True, frozen=True)
class CredentialRecord:
    """One connected account; the key fields are ciphertext, never plaintext."""

    credential_id: int
    user_id: int
    exchange: str
    account_type: str
    api_key_enc: str
    api_secret_enc: str
    passphrase_enc: str | None
    key_hint: str
    created_at: datetime
    verified_at: datetime | None


@dataclass(slots=True, frozen=True)
class NewCredential:
    user_id: int
    exchange: str
    account_type: str
    api_key_enc: str
    api_secret_enc: str
    passphrase_enc: str | None
    key_hint: str


_COLUMNS = (
    "id, user_id, exchange, account_type, api_key_enc, api_secret_enc, passphrase_enc, "
    "key_hint, created_at, verified_at"
)
_GET = f"SELECT {_COLUMNS} FROM api_credentials WHERE id = ? AND user_id = ?"
_FOR_USER = (
    f"SELECT {_COLUMNS} FROM api_credentials WHERE user_id = ? ORDER BY exchange, account_type"
)
_FOR_ACCOUNT = (
    f"SELECT {_COLUMNS} FROM api_credentials "
    "WHERE user_id = ? AND exchange = ? AND account_type = ?"
)
_UPSERT = f"""
INSERT INTO api_credentials (user_id, exchange, account_type, api_key_enc, api_secret_enc,
                             passphrase_enc, key_hint, created_at, verified_at)
VALUES (:user_id, :exchange, :account_type, :api_key_enc, :api_secret_enc, :passphrase_enc,
        :key_hint, :now, :now)
ON CONFLICT (user_id, exchange, account_type) DO UPDATE SET
    api_key_enc = excluded.api_key_enc, api_secret_enc = excluded.api_secret_enc,
    passphrase_enc = excluded.passphrase_enc, key_hint = excluded.key_hint,
    created_at = excluded.created_at, verified_at = excluded.verified_at
RETURNING {_COLUMNS}
"""

HOT_QUERIES = (
    HotQuery("credentials.get", _GET, (1, 1)),
    HotQuery("credentials.for_user", _FOR_USER, (1,)),
    HotQuery("credentials.for_account", _FOR_ACCOUNT, (1, "bybit", "demo")),
)


class CredentialRepository(Repository):
    """SQL for api_credentials."""

    async def upsert(
        self, new: NewCredential, now: datetime, tx: Tx | None = None
    ) -> CredentialRecord:
        """Store (or replace) the keys of one user's exchange account."""
        params = {
            "user_id": new.user_id,
            "exchange": new.exchange,
            "account_type": new.account_type,
            "api_key_enc": new.api_key_enc,
            "api_secret_enc": new.api_secret_enc,
            "passphrase_enc": new.passphrase_enc,
            "key_hint": new.key_hint,
            "now": to_ms(now),
        }
        async with self._tx(tx) as t:
            row = await t.fetchone("credentials.upsert", _UPSERT, params)
        assert row is not None
        return _record(row)

    async def get(self, user_id: int, credential_id: int) -> CredentialRecord | None:
        """Fetch one account, only if it belongs to `user_id`."""
        row = await self.store.fetchone("credentials.get", _GET, (credential_id, user_id))
        return None if row is None else _record(row)

    async def for_user(self, user_id: int) -> list[CredentialRecord]:
        rows = await self.store.fetchall("credentials.for_user", _FOR_USER, (user_id,))
        return [_record(row) for row in rows]

    async def for_account(
        self, user_id: int, exchange: str, account_type: str
    ) -> CredentialRecord | None:
        row = await self.store.fetchone(
            "credentials.for_account", _FOR_ACCOUNT, (user_id, exchange, account_type)
        )
        return None if row is None else _record(row)

    async def delete(self, user_id: int, credential_id: int, tx: Tx | None = None) -> bool:
        async with self._tx(tx) as t:
            removed = await t.execute(
                "credentials.delete",
                "DELETE FROM api_credentials WHERE id = ? AND user_id = ?",
                (credential_id, user_id),
            )
        return removed == 1

    async def mark_verified(self, credential_id: int, now: datetime) -> None:
        await self.store.execute(
            "credentials.mark_verified",
            "UPDATE api_credentials SET verified_at = ? WHERE id = ?",
            (to_ms(now), credential_id),
        )

    async def all_for_rotation(self, tx: Tx) -> list[CredentialRecord]:
        """Every stored credential, read inside the rotation's own transaction."""
        rows = await tx.fetchall("credentials.all", f"SELECT {_COLUMNS} FROM api_credentials")
        return [_record(row) for row in rows]

    async def replace_ciphertexts(
        self, rows: Iterable[tuple[int, str, str, str | None]], tx: Tx
    ) -> int:
        """Write re-encrypted (id, key, secret, passphrase) tokens in one statement."""
        sql = (
            "UPDATE api_credentials SET api_key_enc = ?, api_secret_enc = ?, "
            "passphrase_enc = ? WHERE id = ?"
        )
        params = [(key, secret, phrase, cid) for cid, key, secret, phrase in rows]
        return await tx.executemany("credentials.replace_ciphertexts", sql, params)


def _record(row: Row) -> CredentialRecord:
    return CredentialRecord(
        credential_id=row["id"],
        user_id=row["user_id"],
        exchange=row["exchange"],
        account_type=row["account_type"],
        api_key_enc=row["api_key_enc"],
        api_secret_enc=row["api_secret_enc"],
        passphrase_enc=row["passphrase_enc"],
        key_hint=row["key_hint"],
        created_at=from_ms_req(row["created_at"]),
        verified_at=from_ms(row["verified_at"]),
    )
