"""Small renderers shared by handlers: licence lines, numbers, durations, message splitting."""

from __future__ import annotations

from services.licenses import LicenseState, LicenseStatus

MAX_MESSAGE = 4096


def license_line(state: LicenseState) -> str:
    """One line about the caller's licence, HTML."""
    if state.status is LicenseStatus.ACTIVE and state.end_at is not None:
        days = "1 day" if state.days_left == 1 else f"{state.days_left} days"
        until = state.end_at.strftime("%Y-%m-%d %H:%M UTC")
        return f"Licence: <b>{state.plan}</b>, active until {until} ({days} left)."
    if state.status is LicenseStatus.NONE:
        return (
            "Licence: none yet. You can look around and connect an account; opening "
            "positions needs a licence (/redeem a promo code or ask an admin)."
        )
    ended = "revoked" if state.status is LicenseStatus.REVOKED else "expired"
    return (
        f"Licence: <b>{ended}</b>. You can still view, close and cancel everything; "
        "opening new positions needs a renewed licence."
    )


def duration(seconds: float) -> str:
    """Human duration: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def split_message(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split text on line boundaries into chunks of at most `limit` characters.

    A single line longer than the limit is cut hard, which only happens for pathological
    input; list renderers keep their lines short.
    """
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                chunks.append("\n".join(current))
                current, size = [], 0
            chunks.append(line[:limit])
            line = line[limit:]
        extra = len(line) + (1 if current else 0)
        if size + extra > limit:
            chunks.append("\n".join(current))
            current, size = [line], len(line)
        else:
            current.append(line)
            size += extra
    if current:
        chunks.append("\n".join(current))
    return chunks
