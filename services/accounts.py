"""Traders' exchange accounts: connect (validated, encrypted), list, choose, re-check, remove.

The active account is what every trading command uses; it is cached for 60 s and dropped
from the cache (and its pooled client closed) whenever the account changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from core.cache import CacheLayer
from core.clock import Clock
from core.crypto import SecretBox, SecretContext
from core.errors import InvalidInput, NotFound
from core.exchange.credentials import ApiCredentials
from core.exchange.models import Balance
from core.exchange.venues import VENUES, title
from db.repositories.credentials import CredentialRecord, CredentialRepository, NewCredential
from db.repositories.users import UserRepository
from db.store import Store
from services.caching import ACCOUNTS
from services.exchanges import ExchangeGateway
from services.paper_reset import PaperResets

PAPER = "paper"


@dataclass(slots=True, frozen=True)
class AccountRef:
    """Which account a trader's commands act on."""

    user_id: int
    credential_id: int
    exchange: str
    account_type: str

    @property
    def label(self) -> str:
        """Bybit (demo), Paper."""
        if self.exchange == PAPER:
            return "Paper"
        return f"{title(self.exchange)} ({self.account_type})"


@dataclass(slots=True, frozen=True)
class AccountView:
    """A connected account as /keys shows it: the key only as its last four characters."""

    ref: AccountRef
    key_hint: str
    added_at: datetime
    verified_at: datetime | None
    active: bool


@dataclass(slots=True, frozen=True)
class Connection:
    """An account whose keys just answered a balance call."""

    account: AccountRef
    balance: Balance


def account_types(exchange: str) -> tuple[str, ...]:
    """The account types Tradewind offers for an exchange."""
    return (PAPER,) if exchange == PAPER else VENUES[exchange].account_types


def needs_passphrase(exchange: str) -> bool:
    """Whether the exchange's API keys come with a passphrase (OKX)."""
    return exchange in VENUES and VENUES[exchange].needs_passphrase


class AccountService:
    """Connects and manages the exchange accounts of traders."""

    def __init__(
        self,
        store: Store,
        gateway: ExchangeGateway,
        secrets: SecretBox,
        cache: CacheLayer,
        clock: Clock,
        offered: tuple[str, ...],
    ) -> None:
        self._store = store
        self._credentials = CredentialRepository(store)
        self._users = UserRepository(store)
        self._gateway = gateway
        self._secrets = secrets
        self._active = cache.cache(ACCOUNTS.name)
        self._clock = clock
        self.offered = offered
        self.paper = PaperResets(store, gateway, clock)
        # Told which account each command acts on (the stream manager marks it active).
        self.on_use: list[Callable[[AccountRef], None]] = []

    async def connect(
        self,
        user_id: int,
        exchange: str,
        account_type: str,
        credentials: ApiCredentials | None = None,
    ) -> Connection:
        """Validate the keys with one balance call, then store them encrypted and activate.

        Wrong keys raise `AuthFailed` (from the exchange), an account whose position mode
        Tradewind cannot trade raises `AccountSetupRequired`; either way nothing is stored.
        """
        self._check_offered(exchange, account_type)
        if exchange == PAPER:
            credentials = ApiCredentials("", "")
        elif credentials is None or not credentials.api_key or not credentials.secret:
            raise InvalidInput("An API key and secret are needed for a real exchange account")
        elif needs_passphrase(exchange) and not credentials.passphrase:
            raise InvalidInput(
                f"{title(exchange)} API keys come with a passphrase; it is needed too"
            )
        if exchange != PAPER:
            balance = await self._gateway.probe(exchange, account_type, credentials)
            # Keys that work on an account set up against Tradewind (hedge mode) are not
            # stored: every order would be refused later, far from the reason.
            await self._gateway.venue(exchange).check_account(account_type, credentials)
        ref = await self._store_keys(user_id, exchange, account_type, credentials)
        await self._gateway.forget(user_id, exchange, account_type)
        if exchange == PAPER:
            balance = await self._gateway.account(user_id, PAPER, PAPER).check()
        return Connection(ref, balance)

    async def active(self, user_id: int) -> AccountRef | None:
        """The account commands act on: the chosen one, else the first connected."""
        result: AccountRef | None = await self._active.get_or_load(
            f"{user_id}:active", self._active_loader(user_id)
        )
        return result

    async def warm(self, user_id: int) -> None:
        """Reload the cached active account before it expires (cache warming)."""
        await self._active.refresh(f"{user_id}:active", self._active_loader(user_id))

    def _active_loader(self, user_id: int) -> Callable[[], Awaitable[AccountRef | None]]:
        async def load() -> AccountRef | None:
            user = await self._users.get(user_id)
            records = await self._credentials.for_user(user_id)
            chosen = next(
                (r for r in records if user and r.credential_id == user.active_credential_id),
                records[0] if records else None,
            )
            return None if chosen is None else _ref(chosen)

        return load

    async def accounts(self, user_id: int) -> list[AccountView]:
        """The trader's connected accounts, keys masked, the active one marked."""
        active = await self.active(user_id)
        return [_view(r, active) for r in await self._credentials.for_user(user_id)]

    async def account(self, user_id: int, credential_id: int) -> AccountView:
        """One of the trader's accounts; `NotFound` if it is not theirs (or gone)."""
        record = await self._owned(user_id, credential_id)
        return _view(record, await self.active(user_id))

    async def make_active(self, user_id: int, credential_id: int) -> AccountRef:
        """Make one of the trader's accounts the one their commands act on."""
        record = await self._owned(user_id, credential_id)
        await self._users.set_active_credential(user_id, credential_id)
        self._forget_cached(user_id)
        return _ref(record)

    async def recheck(self, user_id: int, credential_id: int) -> Connection:
        """Validate the stored keys again with one balance call; record when."""
        record = await self._owned(user_id, credential_id)
        account = self._gateway.account(user_id, record.exchange, record.account_type)
        balance = await account.check()
        await self._credentials.mark_verified(credential_id, self._clock.now())
        return Connection(_ref(record), balance)

    async def remove(self, user_id: int, credential_id: int) -> AccountRef:
        """Delete the stored keys of one of the trader's accounts and close its client."""
        record = await self._owned(user_id, credential_id)
        async with self._store.transaction() as tx:
            await self._credentials.delete(user_id, credential_id, tx)
        await self._gateway.forget(user_id, record.exchange, record.account_type)
        self._forget_cached(user_id)
        return _ref(record)

    async def require_active(self, user_id: int) -> AccountRef:
        """The active account, or a refusal that tells the trader how to connect one."""
        ref = await self.active(user_id)
        if ref is None:
            raise NotFound(
                "No exchange account yet. Send /connect (the paper account needs no keys)."
            )
        for listener in self.on_use:
            listener(ref)
        return ref

    def _check_offered(self, exchange: str, account_type: str) -> None:
        if exchange not in self.offered:
            choices = ", ".join(map(title, self.offered))
            raise InvalidInput(f"{title(exchange)} is not offered here; choose from {choices}")
        if account_type not in account_types(exchange):
            kinds = ", ".join(account_types(exchange))
            raise InvalidInput(f"{title(exchange)} has no {account_type} accounts ({kinds})")

    async def _store_keys(
        self, user_id: int, exchange: str, account_type: str, credentials: ApiCredentials
    ) -> AccountRef:
        ctx = SecretContext(user_id, exchange, account_type)
        phrase = credentials.passphrase
        new = NewCredential(
            user_id=user_id,
            exchange=exchange,
            account_type=account_type,
            api_key_enc=self._secrets.encrypt(credentials.api_key, ctx),
            api_secret_enc=self._secrets.encrypt(credentials.secret, ctx),
            passphrase_enc=None if not phrase else self._secrets.encrypt(phrase, ctx),
            key_hint=credentials.hint,
        )
        async with self._store.transaction() as tx:
            record = await self._credentials.upsert(new, self._clock.now(), tx)
            await self._users.set_active_credential(user_id, record.credential_id, tx)
        self._forget_cached(user_id)
        return _ref(record)

    async def _owned(self, user_id: int, credential_id: int) -> CredentialRecord:
        record = await self._credentials.get(user_id, credential_id)
        if record is None:
            raise NotFound("That account is not connected (any more).")
        return record

    def _forget_cached(self, user_id: int) -> None:
        # The accounts' own cached state goes with their keys (`ExchangeGateway.forget`).
        self._active.invalidate(f"{user_id}:active")


def _ref(record: CredentialRecord) -> AccountRef:
    return AccountRef(record.user_id, record.credential_id, record.exchange, record.account_type)


def _view(record: CredentialRecord, active: AccountRef | None) -> AccountView:
    chosen = active is not None and record.credential_id == active.credential_id
    return AccountView(_ref(record), record.key_hint, record.created_at, record.verified_at, chosen)
