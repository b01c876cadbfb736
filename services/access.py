"""Who may do what: the one place that knows which users are admins."""

from __future__ import annotations

from collections.abc import Iterable


class AccessPolicy:
    """Admin rights come from configuration (`TRADEWIND_ADMIN_IDS`, or the console user)."""

    def __init__(self, admin_ids: Iterable[int]) -> None:
        self._admins = frozenset(admin_ids)

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self._admins

    @property
    def admin_ids(self) -> frozenset[int]:
        return self._admins
