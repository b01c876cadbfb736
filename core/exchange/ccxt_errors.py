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
    said = f" ({detail})" if detail else ""  # the venue's own words, when it gave any
    if isinstance(error, ex.ExchangeError):
        return error
    if placing_order and _outcome_unknown(error):
        return ex.UnknownOutcome(
            exchange,
            f"{name} did not confirm the order{said}; checking whether it was placed",
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
            f"{name} refused the API key{said}. Check the key, secret and its "
            "permissions (trading enabled, IP whitelist).",
        )
    if isinstance(error, ccxt.InsufficientFunds):
        return ex.InsufficientFunds(exchange, f"Not enough available margin on {name}{said}")
    if isinstance(error, ccxt.OrderNotFound):
        return ex.OrderNotFound(exchange, f"{name} has no such order")
    if isinstance(error, ccxt.InvalidOrder | ccxt.BadRequest | ccxt.OperationRejected):
        return ex.InvalidOrder(exchange, f"{name} refused the order{said}")
    if isinstance(error, ccxt.NotSupported | ccxt.ArgumentsRequired):
        return ex.InvalidOrder(exchange, f"{name} does not support this{said}")
    if isinstance(error, ccxt.ExchangeNotAvailable):
        return ex.ExchangeUnavailable(exchange, f"{name} is unavailable right now{said}")
    if isinstance(error, ccxt.RequestTimeout | asyncio.TimeoutError | TimeoutError):
        return ex.ExchangeUnavailable(exchange, f"{name} did not answer in time")
    if isinstance(error, ccxt.NetworkError | aiohttp.ClientError | ConnectionError | OSError) or (
        isinstance(error.__cause__, aiohttp.ClientError)
    ):
        return ex.ExchangeUnavailable(exchange, f"Cannot reach {name}{said}")
    if isinstance(error, ccxt.BadResponse | ValueError):
        return ex.ExchangeUnavailable(exchange, f"{name} sent an unreadable answer")
    if isinstance(error, ccxt.ExchangeError) and (
        placing_order or any(code in str(error) for code in _REFUSAL_CODES)
    ):
        return ex.InvalidOrder(exchange, f"{name} refused the order{said}")
    return ex.ExchangeUnavailable(exchange, f"{name} failed{said}")


def is_outage(exchange: str, error: BaseException) -> bool:
    """The venue itself failed (timeout, connection, 5xx, garbage), not refused something:
    what a read would call `ExchangeUnavailable`. Counted by the venue's circuit breaker."""
    return isinstance(map_error(exchange, error), ex.ExchangeUnavailable)


# Refusals ccxt files as a plain ExchangeError, which would read as a venue failure and be
# retried: OKX 59102 "Leverage exceeds the maximum leverage".
_REFUSAL_CODES = ('"59102"',)

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


# Venues echo what they signed (Bybit: "error sign! origin_string[<timestamp><api key>...]");
# none of that may reach a chat or a log line.
_SIGNED_ECHO_RE = re.compile(r"origin_string\[.*?\]|origin_string.*", re.DOTALL)
_URL_RE = re.compile(r"\b(GET|POST|PUT|DELETE)\s+https?://\S+|https?://\S+")


def _venue_message(error: BaseException) -> str:
    """The venue's own words (retMsg / msg / sMsg) when present, else a short class name.

    Echoed signing material and request URLs are cut out: the text reaches traders.
    """
    return _clean(_raw_message(error))


def _clean(text: str) -> str:
    text = _SIGNED_ECHO_RE.sub("", text)
    text = _URL_RE.sub("", text)
    return " ".join(text.split()).strip(" :;,-")[:160]


def _raw_message(error: BaseException) -> str:
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
            # OKX says why an order failed in data[].sMsg, under a generic msg.
            for value in (nested.get("sMsg"), body.get("retMsg"), body.get("msg")):
                if value:
                    return str(value)
    # ccxt prefixes its own messages with the exchange id ("bybit GET https://...").
    return text.split(" ", 1)[1] if text.startswith(("bybit ", "binance", "okx ")) else text
