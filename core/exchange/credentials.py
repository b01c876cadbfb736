"""Decrypted API credentials, held only in memory and never printed."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.redaction import SECRETS


@dataclass(slots=True, frozen=True, weakref_slot=True)
class ApiCredentials:
    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    passphrase: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Masked in every log for as long as this object lives.
        SECRETS.hold(self, self.api_key, self.secret, self.passphrase)

    def values(self) -> tuple[str, str, str | None]:
        """The three secrets, for registering them against whatever else holds them."""
        return self.api_key, self.secret, self.passphrase

    @property
    def hint(self) -> str:
        """The last four characters of the key, for display: `key …a1b2`."""
        return self.api_key[-4:]

    def __repr__(self) -> str:
        return f"ApiCredentials(key=…{self.hint})"
