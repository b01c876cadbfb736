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
from collections import deque
from dataclasses import dataclass

MASK = "***"
# A shorter value would mask ordinary words and numbers; real keys and secrets are longer,
# and the header and parameter shapes below still catch a short passphrase where it is sent.
MIN_SECRET_LENGTH = 6

_QUOTED = r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
_SIGNING_HEADERS = (
    "X-BAPI-API-KEY|X-BAPI-SIGN|OK-ACCESS-KEY|OK-ACCESS-SIGN|OK-ACCESS-PASSPHRASE|X-MBX-APIKEY"
)
_TEXT = r"""(\b{}["']?\s*[:=]\s*)""" + _QUOTED
# (a substring the text must contain, lower case; the pattern; its replacement): the cheap
# substring test spares most log lines every regular expression.
_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    # Bot API URLs carry the token: https://api.telegram.org/bot<token>/getUpdates
    (":", re.compile(r"(bot)\d{3,20}:[A-Za-z0-9_-]{20,}"), rf"\1{MASK}"),
    (":", re.compile(r"\b\d{3,20}:[A-Za-z0-9_-]{30,}"), MASK),
    # Message text in JSON or a dict repr ('text': '...') and in a PTB object repr (text='...').
    ("text", re.compile(_TEXT.format("text")), rf"\1'{MASK}'"),
    ("caption", re.compile(_TEXT.format("caption")), rf"\1'{MASK}'"),
    # Signing headers, quoted in a dict repr or unquoted to the end of a raw header line.
    (
        "-",
        re.compile(
            rf"""((?:{_SIGNING_HEADERS})["']?\s*[:=]\s*)(?:{_QUOTED}|[^"',}}\r\n]+)""", re.I
        ),
        rf"\1'{MASK}'",
    ),
    # Signed query strings and bodies: ...&signature=..., api_key=..., passphrase=...
    (
        "=",
        re.compile(r"""(\b(?:signature|sign|api_?key|secret|passphrase)=)[^&\s"',}]+""", re.I),
        rf"\1{MASK}",
    ),
)


class SecretRegistry:
    """The secret values in memory right now; `mask` replaces each with `***`."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._index: _Index | None = _Index({}, ())  # None: rebuild at the next mask
        self._lock = threading.Lock()
        # A finalizer may run inside any allocation, on any thread, even while this thread
        # holds the lock (a collection triggered in `_rebuild`): it only queues the values,
        # with an atomic append, and the next rebuild takes them off under the lock.
        self._released: deque[tuple[str, ...]] = deque()

    def keep(self, *values: str | None) -> None:
        """Register values for the life of the process (the bot token)."""
        self._add(_usable(values))

    def hold(self, owner: object, *values: str | None) -> None:
        """Register values until `owner` is garbage-collected."""
        usable = _usable(values)
        if usable:
            self._add(usable)
            weakref.finalize(owner, self._release_later, usable)

    def __contains__(self, value: str) -> bool:
        with self._lock:
            self._drain()
            return value in self._counts

    def __len__(self) -> int:
        with self._lock:
            self._drain()
            return len(self._counts)

    def mask(self, text: str) -> str:
        """`text` with every registered value masked (longest first, so none shows in part).

        Only values sharing a piece with `text` are searched for, so a log line costs about
        the same with thousands of credentials in memory as with a few. Every value of at
        least 2·W−1 characters is indexed by its W-character pieces at offsets 0..W−1; any
        occurrence of it in `text` then covers one of the pieces of `text` at multiples of W.
        """
        index = self._index
        if index is None:
            index = self._rebuild()
        w = MIN_SECRET_LENGTH
        pieces = {text[i : i + w] for i in range(0, len(text) - w + 1, w)}
        found = {v for piece in index.pieces.keys() & pieces for v in index.pieces[piece]}
        candidates = found.union(index.short)
        for value in sorted(candidates, key=len, reverse=True):
            if value in text:
                text = text.replace(value, MASK)
        return text

    def _add(self, values: tuple[str, ...]) -> None:
        with self._lock:
            for value in values:
                self._counts[value] = self._counts.get(value, 0) + 1
            self._index = None

    def _release_later(self, values: tuple[str, ...]) -> None:
        self._released.append(values)
        self._index = None

    def _drain(self) -> None:
        """Forget the values whose owners are gone (called with the lock held)."""
        while self._released:
            for value in self._released.popleft():
                left = self._counts.get(value, 0) - 1
                if left > 0:
                    self._counts[value] = left
                else:
                    self._counts.pop(value, None)

    def _rebuild(self) -> _Index:
        w = MIN_SECRET_LENGTH
        with self._lock:
            self._drain()
            pieces: dict[str, set[str]] = {}
            short: list[str] = []
            for value in self._counts:
                if len(value) < 2 * w - 1:
                    short.append(value)
                    continue
                for k in range(w):
                    pieces.setdefault(value[k : k + w], set()).add(value)
            index = _Index(pieces, tuple(short))
            self._index = index
            return index


@dataclass(slots=True, frozen=True)
class _Index:
    pieces: dict[str, set[str]]
    short: tuple[str, ...]  # too short to index: always searched for


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
    lowered = text.lower()
    for needle, pattern, replacement in _PATTERNS:
        if needle in lowered:
            text = pattern.sub(replacement, text)
    return text
