"""Master-key rotation: every stored secret re-encrypted under the newest key at once."""

from __future__ import annotations

from core.crypto import SecretBox, SecretContext
from db.repositories.credentials import CredentialRepository
from db.store import Store


async def rotate_secrets(store: Store, box: SecretBox) -> int:
    """Re-encrypt all credentials in one durable transaction; return how many.

    Either every row moves to the newest key or none does: a failure half-way (a token
    that no loaded key can open) rolls the whole rotation back.
    """
    credentials = CredentialRepository(store)
    async with store.transaction(durable=True) as tx:
        rows = await credentials.all_for_rotation(tx)
        rotated = []
        for row in rows:
            ctx = SecretContext(row.user_id, row.exchange, row.account_type)
            phrase = None if row.passphrase_enc is None else box.rotate(row.passphrase_enc, ctx)
            rotated.append(
                (
                    row.credential_id,
                    box.rotate(row.api_key_enc, ctx),
                    box.rotate(row.api_secret_enc, ctx),
                    phrase,
                )
            )
        await credentials.replace_ciphertexts(rotated, tx)
    return len(rotated)
