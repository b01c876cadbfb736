"""Decrypted API credentials, held only in memory and never printed."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, frozen=True)
class ApiCredentials:
    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    passphrase: str | None = field(default=None, repr=False)

    @property
    def hint(self) -> str:
        """The last four characters of the key, for display: `key …a1b2`."""
        return self.api_key[-4:]

    def __repr__(self) -> str:
        return f"ApiCredentials(key=…{self.hint})"
