"""The one place where ccxt and HTTP failures become Tradewind's exchange errors.

Placement is special: a timeout, a dropped connection, a 5xx, a garbled answer or a
duplicate-id refusal while creating an order means the order may exist, so those become
`UnknownOutcome` and are resolved by lookup. The same failures on a read are temporary.
"""

from __future__ import annotations

import asyncio
import json
import re

import aiohttp
import ccxt

from core.exchange import errors as ex
from core.exchange.venues import title

_JSON_RE = re.compile(r"\{.*\}", re.DOTALL)


def map_error(
    exchange: str,
    error: BaseException,
    *,
    placing_order: bool = False,
    retry_after: float | None = None,
    client_order_id: str | None = None,
) -> ex.ExchangeError:
    """Translate one exception into exactly one domain error with a readable message."""
    name = title(exchange)
    detail = _venue_message(error)
    if isinstance(error, ex.ExchangeError):
        return error
    if placing_order and _outcome_unknown(error):
        return ex.UnknownOutcome(
            exchange,
            f"{name} did not confirm the order ({detail}); checking whether it was placed",
            client_order_id,
        )
    if isinstance(error, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        wait = f"{retry_after:.0f} s" if retry_after else "a few seconds"
        return ex.RateLimited(
            exchange, f"{name} is rate limiting us, try again in {wait}", retry_after
        )
    if isinstance(error, ccxt.AuthenticationError | ccxt.AccountSuspended):
        return ex.AuthFailed(
            exchange,
            f"{name} refused the API key ({detail}). Check the key, secret and its "
            "permissions (trading enabled, IP whitelist).",
        )
    if isinstance(error, ccxt.InsufficientFunds):
        return ex.InsufficientFunds(exchange, f"Not enough available margin on {name} ({detail})")
    if isinstance(error, ccxt.OrderNotFound):
        return ex.OrderNotFound(exchange, f"{name} has no such order")
    if isinstance(error, ccxt.InvalidOrder | ccxt.BadRequest | ccxt.OperationRejected):
        return ex.InvalidOrder(exchange, f"{name} refused the order: {detail}")
    if isinstance(error, ccxt.NotSupported | ccxt.ArgumentsRequired):
        return ex.InvalidOrder(exchange, f"{name} does not support this: {detail}")
    if isinstance(error, ccxt.ExchangeNotAvailable):
        return ex.ExchangeUnavailable(exchange, f"{name} is unavailable right now ({detail})")
    if isinstance(error, ccxt.RequestTimeout | asyncio.TimeoutError | TimeoutError):
        return ex.ExchangeUnavailable(exchange, f"{name} did not answer in time")
    if isinstance(error, ccxt.NetworkError | aiohttp.ClientError | ConnectionError | OSError) or (
        isinstance(error.__cause__, aiohttp.ClientError)
    ):
        return ex.ExchangeUnavailable(exchange, f"Cannot reach {name} ({detail})")
    if isinstance(error, ccxt.BadResponse | ValueError):
        return ex.ExchangeUnavailable(exchange, f"{name} sent an unreadable answer")
    if isinstance(error, ccxt.ExchangeError) and placing_order:
        return ex.InvalidOrder(exchange, f"{name} refused the order: {detail}")
    return ex.ExchangeUnavailable(exchange, f"{name} failed: {detail}")


# Venue codes for "this client order id was used already": Bybit, Binance, OKX.
_DUPLICATE_ID_CODES = ("110072", "-4116", "51016")


def _outcome_unknown(error: BaseException) -> bool:
    """Failures after which an order request may have been executed by the venue."""
    text = str(error)
    if isinstance(error, ccxt.InvalidOrder) and (
        any(code in text for code in _DUPLICATE_ID_CODES) or "duplicat" in text.lower()
    ):
        return True  # the id exists, so an order with it may exist: look it up
    if isinstance(error.__cause__, aiohttp.ClientError):
        return True  # ccxt wraps a broken transfer (e.g. a truncated body) in ExchangeError
    return isinstance(
        error,
        ccxt.DuplicateOrderId
        | ccxt.RequestTimeout
        | ccxt.ExchangeNotAvailable
        | ccxt.BadResponse
        | aiohttp.ClientError
        | asyncio.TimeoutError
        | TimeoutError
        | ConnectionError,
    ) or (
        isinstance(error, ccxt.NetworkError)
        and not isinstance(error, ccxt.RateLimitExceeded | ccxt.DDoSProtection)
    )


def _venue_message(error: BaseException) -> str:
    """The venue's own words (retMsg / msg / sMsg) when present, else a short class name."""
    text = str(error)
    match = _JSON_RE.search(text)
    if match:
        try:
            body = json.loads(match.group())
        except ValueError:
            body = None
        if isinstance(body, dict):
            data = body.get("data")
            nested = (
                data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
            )
            for key in ("retMsg", "msg", "sMsg"):
                value = body.get(key) or nested.get(key)
                if value:
                    return str(value)[:160]
    cleaned = text.strip()
    return cleaned[:160] if cleaned else type(error).__name__
