"""Per-user notification settings: which kinds of notices reach a trader, and how loudly."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InvalidInput, NotFound
from db.repositories.users import UserRecord, UserRepository

# topic word a trader types → users column the outbox reads
TOPICS = {"signals": "notify_signals", "fills": "notify_fills", "reports": "notify_reports"}
MODES = ("on", "off", "silent")
USAGE = "Usage: /notify signals|fills|reports on|off|silent, e.g. /notify signals silent."


@dataclass(slots=True, frozen=True)
class NotifySettings:
    """'on', 'off' or 'silent' (delivered without sound) per topic."""

    signals: str
    fills: str  # fills, TP/SL hits and stop-outs
    reports: str

    def of(self, topic: str) -> str:
        return str(getattr(self, topic))


class NotificationSettings:
    """Read and change a trader's notification settings."""

    def __init__(self, users: UserRepository) -> None:
        self._users = users

    async def current(self, user_id: int) -> NotifySettings:
        user = await self._users.get(user_id)
        if user is None:
            raise NotFound("Send /start first.")
        return _settings(user)

    async def change(self, user_id: int, topic: str, mode: str) -> NotifySettings:
        """Set one topic to on, off or silent; refuse anything else with the usage line."""
        column = TOPICS.get(topic.lower())
        if column is None or mode.lower() not in MODES:
            raise InvalidInput(USAGE)
        user = await self._users.set_notify(user_id, column, mode.lower())
        if user is None:
            raise NotFound("Send /start first.")
        return _settings(user)


def _settings(user: UserRecord) -> NotifySettings:
    return NotifySettings(user.notify_signals, user.notify_fills, user.notify_reports)
