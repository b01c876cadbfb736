"""Masking secrets out of text bound for a log.

Two kinds of secret are masked:
- known values: the bot token and every exchange credential while it is in memory. Whoever
  holds decrypted credentials registers them against an owner object with `SECRETS.hold`;
  they are forgotten when the owner is garbage-collected, so the registry never outlives
  the secrets it protects;
- shapes: a bot token in a Bot API URL, the text and caption of Telegram messages (what a
  trader types into /connect is logged inside getUpdates results and "Processing update"
  before any handler could know it is a key), exchange signing headers and query parameters.
"""

from __future__ import annotations

import re
import threading
import weakref

MASK = "***"
# A shorter value would mask ordinary words and numbers; real keys and secrets are longer,
# and the header and parameter shapes below still catch a short passphrase where it is sent.
MIN_SECRET_LENGTH = 6

_QUOTED = r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
_SIGNING_HEADERS = (
    "X-BAPI-API-KEY|X-BAPI-SIGN|OK-ACCESS-KEY|OK-ACCESS-SIGN|OK-ACCESS-PASSPHRASE|X-MBX-APIKEY"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Bot API URLs carry the token: https://api.telegram.org/bot<token>/getUpdates
    (re.compile(r"(bot)\d{3,20}:[A-Za-z0-9_-]{20,}"), rf"\1{MASK}"),
    (re.compile(r"\b\d{3,20}:[A-Za-z0-9_-]{30,}"), MASK),
    # Message text in JSON or a dict repr ('text': '...') and in a PTB object repr (text='...').
    (re.compile(rf"""(["']?\b(?:text|caption)["']?\s*[:=]\s*){_QUOTED}"""), rf"\1'{MASK}'"),
    # Signing headers, quoted in a dict repr or unquoted to the end of a raw header line.
    (
        re.compile(
            rf"""((?:{_SIGNING_HEADERS})["']?\s*[:=]\s*)(?:{_QUOTED}|[^"',}}\r\n]+)""", re.I
        ),
        rf"\1'{MASK}'",
    ),
    # Signed query strings and bodies: ...&signature=..., api_key=..., passphrase=...
    (
        re.compile(r"""(\b(?:signature|sign|api_?key|secret|passphrase)=)[^&\s"',}]+""", re.I),
        rf"\1{MASK}",
    ),
)


class SecretRegistry:
    """The secret values in memory right now; `mask` replaces each with `***`."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._values: tuple[str, ...] = ()
        self._lock = threading.Lock()  # finalizers may run on any thread

    def keep(self, *values: str | None) -> None:
        """Register values for the life of the process (the bot token)."""
        self._add(_usable(values))

    def hold(self, owner: object, *values: str | None) -> None:
        """Register values until `owner` is garbage-collected."""
        usable = _usable(values)
        if usable:
            self._add(usable)
            weakref.finalize(owner, self._release, usable)

    def __contains__(self, value: str) -> bool:
        return value in self._counts

    def __len__(self) -> int:
        return len(self._counts)

    def mask(self, text: str) -> str:
        """`text` with every registered value masked (longest first, so none shows in part)."""
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def _add(self, values: tuple[str, ...]) -> None:
        with self._lock:
            for value in values:
                self._counts[value] = self._counts.get(value, 0) + 1
            self._refresh()

    def _release(self, values: tuple[str, ...]) -> None:
        with self._lock:
            for value in values:
                left = self._counts.get(value, 0) - 1
                if left > 0:
                    self._counts[value] = left
                else:
                    self._counts.pop(value, None)
            self._refresh()

    def _refresh(self) -> None:
        # Swapped whole, so a reader on another thread sees the old or the new tuple.
        self._values = tuple(sorted(self._counts, key=len, reverse=True))


def _usable(values: tuple[str | None, ...]) -> tuple[str, ...]:
    found: list[str] = []
    for value in values:
        if value and len(value) >= MIN_SECRET_LENGTH:
            found.append(value)
            if ":" in value:  # a bot token: its secret half alone is a secret too
                tail = value.split(":", 1)[1]
                if len(tail) >= MIN_SECRET_LENGTH:
                    found.append(tail)
    return tuple(found)


SECRETS = SecretRegistry()


def redact(text: str, registry: SecretRegistry = SECRETS) -> str:
    """Mask registered secrets and secret-shaped fields in `text`."""
    text = registry.mask(text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
