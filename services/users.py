"""Traders as the bot knows them: registration, presence, reachability."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.cache import CacheLayer
from core.clock import Clock
from db.repositories.users import UserProfile, UserRecord, UserRepository
from services.licenses import LicenseService, LicenseState

__all__ = ["Registration", "UserProfile", "UserService"]  # handlers build UserProfile

log = logging.getLogger(__name__)

KNOWN_USERS_CACHE = "known_users"


@dataclass(slots=True, frozen=True)
class Registration:
    user: UserRecord
    is_new: bool
    license: LicenseState


class UserService:
    """Registers users and batches their last-seen times instead of a write per update."""

    def __init__(
        self, users: UserRepository, licenses: LicenseService, cache: CacheLayer, clock: Clock
    ) -> None:
        self._users = users
        self._licenses = licenses
        self._clock = clock
        self._known = cache.define(KNOWN_USERS_CACHE, ttl=3600, maxsize=100_000)
        self._seen: dict[int, datetime] = {}
        self._created_unseen: set[int] = set()  # created by `ensure`, not greeted yet

    async def register(self, profile: UserProfile) -> Registration:
        """/start: create or refresh the user in one upsert and read their licence."""
        user, is_new = await self._users.upsert(profile, self._clock.now())
        self._known.set(str(profile.user_id), True)
        self._seen.pop(profile.user_id, None)
        if profile.user_id in self._created_unseen:
            self._created_unseen.discard(profile.user_id)
            is_new = True
        if is_new:
            log.info("new user %d", profile.user_id)
        return Registration(user, is_new, await self._licenses.state(profile.user_id))

    async def ensure(self, profile: UserProfile) -> None:
        """Make sure a user row exists (once per process per user), then note their presence.

        Later features reference users by foreign key, so someone who never sent /start
        must still exist; the known-users cache keeps this to one upsert per hour per user.
        """

        async def upsert() -> bool:
            _, created = await self._users.upsert(profile, self._clock.now())
            if created:
                self._created_unseen.add(profile.user_id)
            return True

        await self._known.get_or_load(str(profile.user_id), upsert)
        self._seen[profile.user_id] = self._clock.now()

    async def flush_presence(self) -> int:
        """Write the buffered last-seen times in one transaction; return how many."""
        if not self._seen:
            return 0
        seen, self._seen = self._seen, {}
        await self._users.touch_many(seen.items())
        return len(seen)

    async def last_seen_since(self, since_s: float) -> dict[int, datetime]:
        """Users the database saw within the last `since_s` seconds, and when (presence not
        written yet is `presence()`)."""
        since = self._clock.now() - timedelta(seconds=since_s)
        return dict(await self._users.last_seen_since(since))

    def presence(self) -> Mapping[int, datetime]:
        """Users seen since the last flush and when (read-only; the cache warmer uses it)."""
        return self._seen

    async def get(self, user_id: int) -> UserRecord | None:
        return await self._users.get(user_id)
