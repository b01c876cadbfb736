"""Deterministic client order ids, valid on Bybit, Binance and OKX alike.

32 characters, letters and digits only (OKX's clOrdId is the strictest: alphanumeric, at
most 32). The same business action always yields the same id, so a retry, a crash or a
redelivered button press can never create a second order: the venue refuses the duplicate,
and the executor finds the first one by this id.
"""

from __future__ import annotations

import hashlib

PREFIX = "tw"
LENGTH = 32


def client_order_id(kind: str, *parts: object) -> str:
    """Derive the id of one order from what identifies it, e.g. ('auto', signal_id, user_id)."""
    material = "\x1f".join([kind, *(str(p) for p in parts)]).encode()
    digest = hashlib.blake2b(material, digest_size=20).hexdigest()
    return (PREFIX + digest)[:LENGTH]


def is_valid_client_order_id(value: str) -> bool:
    return 0 < len(value) <= LENGTH and value.isascii() and value.isalnum()
