"""API keys: their health as the venue reports it (trade, withdraw, IP whitelist), checked at
/connect and shown by /keys; and master-key rotation, every stored secret re-encrypted at once.

A key that cannot trade is refused at /connect before anything is stored: every order would
fail later, far from the reason. A key that can withdraw, or works from any address, is
accepted with a warning: it trades, but a leak of it costs more than it must. Venues that do
not report a key's permissions (or a read that fails) get no claim either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from core.cache import CacheLayer, NamedCache
from core.crypto import SecretBox, SecretContext
from core.errors import InvalidInput
from core.exchange.credentials import ApiCredentials
from core.exchange.errors import AuthFailed, ExchangeError
from core.exchange.key_info import KeyInfo
from core.exchange.venues import title
from db.repositories.credentials import CredentialRepository
from db.store import Store
from services.accounts import (
    PAPER,
    AccountService,
    AccountView,
    Connection,
    account_types,
    needs_passphrase,
)
from services.exchanges import ExchangeGateway

log = logging.getLogger(__name__)

KEY_HEALTH = "key_health"
KEY_HEALTH_TTL_S = 600.0  # /keys asks the venue at most every 10 minutes per account


@dataclass(slots=True, frozen=True)
class KeyHealth:
    """What the venue says about a key, in words: `flags` short (lists, toasts), `warnings`
    whole sentences (/connect); `refusal` is set when the key cannot trade."""

    exchange: str
    info: KeyInfo

    @property
    def refusal(self) -> str | None:
        if not self.info.reported or self.info.can_trade:
            return None
        return (
            f"{title(self.exchange)} says this key cannot trade (read-only, or without the "
            "permission to place derivatives orders). Create a key with contract trading "
            "(orders and positions) enabled, then /connect it."
        )

    @property
    def flags(self) -> tuple[str, ...]:
        if not self.info.reported:
            return ()
        found = [] if self.info.can_trade else ["cannot trade"]
        found += ["withdrawals enabled"] if self.info.can_withdraw else []
        found += [] if self.info.ip_restricted else ["no IP whitelist"]
        return tuple(found)

    @property
    def warnings(self) -> tuple[str, ...]:
        if not self.info.reported:
            return ()
        venue = title(self.exchange)
        found = []
        if self.info.can_withdraw:
            found.append(
                f"⚠️ {venue} says this key can withdraw funds. Tradewind never needs that: "
                "create a key without the withdrawal permission and /connect it instead."
            )
        if not self.info.ip_restricted:
            found.append(
                f"⚠️ This key has no IP whitelist on {venue}: whoever gets hold of it can "
                "use it from anywhere. Restrict it to the address Tradewind runs on."
            )
        return tuple(found)


@dataclass(slots=True, frozen=True)
class CheckedConnection:
    """A connected account and what its venue says about the key."""

    connection: Connection
    health: KeyHealth | None  # None: paper, or the venue did not answer the question


class KeyHealthService:
    """Reads a key's permissions from its venue: for a new key before it is stored, and for
    the stored ones /keys lists (cached)."""

    def __init__(
        self, gateway: ExchangeGateway, accounts: AccountService, cache: CacheLayer
    ) -> None:
        self._gateway = gateway
        self._accounts = accounts
        self._cache: NamedCache[KeyHealth] = cache.define(KEY_HEALTH, KEY_HEALTH_TTL_S, 10_000)

    async def connect(
        self,
        user_id: int,
        exchange: str,
        account_type: str,
        credentials: ApiCredentials | None = None,
    ) -> CheckedConnection:
        """Connect an account (`AccountService.connect`) after asking the venue about the key:
        one that cannot trade is refused with the reason (`InvalidInput`), nothing stored."""
        health = None
        if _probe_worthy(self._accounts, exchange, account_type, credentials):
            assert credentials is not None
            info = await self._probe(exchange, account_type, credentials)
            health = KeyHealth(exchange, info)
            if health.refusal is not None:
                raise InvalidInput(health.refusal)
        connection = await self._accounts.connect(user_id, exchange, account_type, credentials)
        key = _key(user_id, exchange, account_type)
        if health is not None:  # /keys right after need not ask again
            self._cache.set(key, health)
        else:
            self._cache.invalidate(key)
        return CheckedConnection(connection, health)

    async def recheck(self, user_id: int, credential_id: int) -> CheckedConnection:
        """Re-check the stored keys (one balance call) and ask about the key afresh."""
        connection = await self._accounts.recheck(user_id, credential_id)
        ref = connection.account
        self._cache.invalidate(_key(user_id, ref.exchange, ref.account_type))
        return CheckedConnection(
            connection, await self._stored(user_id, ref.exchange, ref.account_type)
        )

    async def of_accounts(self, views: Sequence[AccountView]) -> dict[int, KeyHealth]:
        """The health of each listed real account's key by credential id, asked at once;
        an account whose venue did not answer is left out."""
        real = [v for v in views if v.ref.exchange != PAPER]
        found = await asyncio.gather(
            *(self._stored(v.ref.user_id, v.ref.exchange, v.ref.account_type) for v in real)
        )
        return {v.ref.credential_id: h for v, h in zip(real, found, strict=True) if h is not None}

    async def _stored(self, user_id: int, exchange: str, account_type: str) -> KeyHealth | None:
        async def load() -> KeyHealth:
            async with self._gateway.lease(user_id, exchange, account_type) as client:
                return KeyHealth(exchange, await client.fetch_key_info())

        try:
            return await self._cache.get_or_load(_key(user_id, exchange, account_type), load)
        except ExchangeError as err:  # revoked keys, a venue down: /keys still lists
            log.debug("key health of %s %s unknown: %s", exchange, account_type, type(err).__name__)
            return None

    async def _probe(
        self, exchange: str, account_type: str, credentials: ApiCredentials
    ) -> KeyInfo:
        """Ask on a throwaway client. Wrong keys raise `AuthFailed` as the balance check
        would; any other failure to answer leaves the question open."""
        client = await self._gateway.venue(exchange).client(account_type, credentials)
        try:
            return await client.fetch_key_info()
        except AuthFailed:
            raise
        except ExchangeError as err:
            log.info("%s did not report the key's permissions: %s", exchange, err.message)
            return KeyInfo.unreported()
        finally:
            await client.close()


def _probe_worthy(
    accounts: AccountService, exchange: str, account_type: str, credentials: ApiCredentials | None
) -> bool:
    """Worth asking the venue: a real exchange offered here, with a whole key; anything
    else is refused by `AccountService.connect` in its own words."""
    return (
        exchange != PAPER
        and exchange in accounts.offered
        and credentials is not None
        and bool(credentials.api_key and credentials.secret)
        and account_type in account_types(exchange)
        and (bool(credentials.passphrase) or not needs_passphrase(exchange))
    )


def _key(user_id: int, exchange: str, account_type: str) -> str:
    return f"{user_id}:{exchange}:{account_type}"


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
