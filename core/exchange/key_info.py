"""What a venue says about an API key's own permissions (`ExchangeClient.fetch_key_info`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class KeyInfo:
    """An API key's permissions as the venue reports them.

    `reported=False`: the venue (or this adapter) does not say, and nothing is claimed about
    the key either way. `ip_restricted`: the key works only from whitelisted addresses.
    """

    reported: bool
    can_trade: bool = True
    can_withdraw: bool = False
    ip_restricted: bool = True

    @classmethod
    def unreported(cls) -> KeyInfo:
        return cls(reported=False)

    @classmethod
    def healthy(cls) -> KeyInfo:
        """Trades, cannot withdraw, bound to known addresses (the paper account's key)."""
        return cls(reported=True)
