"""Admins looking after traders: find one, see their card, grant, revoke, block, unblock.

Blocked users are refused everything; the check runs on every update, so the set of blocked
ids is cached and replaced whenever an admin blocks or unblocks someone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from core.cache import CacheLayer
from core.errors import Forbidden, InvalidInput, NotFound
from db.repositories.analytics import AnalyticsRepository, UserBrief, UserTotal
from db.repositories.users import UserRecord, UserRepository
from services.access import AccessPolicy
from services.audit import AuditService
from services.licenses import LicenseService, LicenseState

__all__ = ["UserAdminService", "UserBrief", "UserCard", "UserRecord", "UserTotal"]

BLOCKED_CACHE = "blocked_users"
GRANT_DAYS = 30
USAGE = (
    "Usage: /users ID or /users NAME (a Telegram id, or the start of a @username, a first "
    "or a last name)."
)


@dataclass(slots=True, frozen=True)
class UserCard:
    user: UserRecord
    license: LicenseState
    totals: UserTotal | None

    @property
    def licence_mark(self) -> str:
        """The licence as this card shows it; a grant from the card applies only while the
        licence still reads so, which makes a repeated press of one card grant once."""
        end = self.license.end_at
        return f"{self.license.status.value[0]}{int(end.timestamp()) if end else 0}"


@dataclass(slots=True, frozen=True)
class UserSearch:
    """One exact match becomes a card; otherwise the candidates, by username."""

    card: UserCard | None
    matches: list[UserBrief]


class UserAdminService:
    """What an admin may do to a trader; every change is audited."""

    def __init__(
        self,
        users: UserRepository,
        analytics_repo: AnalyticsRepository,
        licenses: LicenseService,
        audit: AuditService,
        cache: CacheLayer,
        access: AccessPolicy,
    ) -> None:
        self._access = access
        self._users = users
        self._repo = analytics_repo
        self._licenses = licenses
        self._audit = audit
        self._blocked = cache.define(BLOCKED_CACHE, ttl=600, maxsize=1)
        # Presses are handled concurrently: the check and the grant must not interleave.
        self._granting = asyncio.Lock()

    async def search(self, query: str) -> UserSearch:
        """By Telegram id (digits), or by the start of a username (with or without @), a first
        or a last name."""
        text = query.strip().removeprefix("@")
        if not text:
            raise InvalidInput(USAGE)
        if text.isascii() and text.isdigit() and len(text) <= 18:  # an int SQLite can hold
            return UserSearch(await self.card(int(text)), [])
        matches = await self._repo.search_users(text)
        if len(matches) == 1:
            return UserSearch(await self.card(matches[0].user_id), matches)
        if not matches:
            raise NotFound(
                f"No user's username starts with {text!r}. Nor does a first or last name. {USAGE}"
            )
        return UserSearch(None, matches)

    async def card(self, user_id: int) -> UserCard:
        user = await self._users.get(user_id)
        if user is None:
            raise NotFound(f"There is no user {user_id}. {USAGE}")
        license = await self._licenses.state(user_id)
        return UserCard(user, license, await self._repo.user_total(user_id))

    async def grant(self, actor_id: int, user_id: int, days: int = GRANT_DAYS) -> UserCard:
        """Extend the user's licence by `days` (the licence service audits it and tells the
        analytics)."""
        await self.card(user_id)  # refuses an unknown user before anything is written
        await self._licenses.grant(
            actor_id, user_id, days, plan=self._licenses.plans.default, source="grant"
        )
        return await self.card(user_id)

    async def grant_from_card(
        self, actor_id: int, user_id: int, shown: str
    ) -> tuple[UserCard, bool]:
        """Grant `GRANT_DAYS` unless the licence changed since the card showed `shown` (a
        second press of the same card); the current card, and whether it granted."""
        async with self._granting:
            card = await self.card(user_id)
            if card.licence_mark != shown:
                return card, False
            return await self.grant(actor_id, user_id), True

    async def revoke(self, actor_id: int, user_id: int) -> UserCard:
        await self.card(user_id)
        await self._licenses.revoke(actor_id, user_id, reason="revoked from the user card")
        return await self.card(user_id)

    async def set_blocked(self, actor_id: int, user_id: int, blocked: bool) -> UserCard:
        """Block (every message refused) or unblock a user; an admin cannot be blocked."""
        await self.card(user_id)
        if blocked and self._access.is_admin(user_id):
            raise Forbidden("Admins cannot be blocked.")
        await self._users.set_blocked(user_id, blocked)
        self._blocked.invalidate("ids")
        await self._audit.record(actor_id, "block" if blocked else "unblock", f"user:{user_id}")
        return await self.card(user_id)

    async def is_blocked(self, user_id: int) -> bool:
        """Checked on every update: one cached set of ids, reloaded after each change."""
        blocked: frozenset[int] = await self._blocked.get_or_load(
            "ids", self._repo.blocked_user_ids
        )
        return user_id in blocked
