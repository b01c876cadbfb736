"""What can go wrong talking to an exchange, mapped once from ccxt and HTTP failures.

    ExchangeError                    base; `exchange` names the venue, str() is user-safe
    ├── TemporaryError               worth retrying later (reads are retried automatically)
    │   ├── RateLimited              the venue throttled us; `retry_after` seconds if known
    │   └── ExchangeUnavailable      5xx, maintenance, timeouts and network failures on reads,
    │       │                        malformed responses
    │       └── VenueDown            the venue's circuit breaker is open: nothing was sent
    ├── AuthFailed                   bad key, secret, passphrase, IP or permissions
    ├── AccountSetupRequired         the account is set up in a way Tradewind cannot trade
    │                                (hedge / long-short position mode): says what to change
    ├── InsufficientFunds            not enough margin for the order
    ├── InvalidOrder                 the venue refused the order's parameters
    ├── OrderNotFound                no such order (also: a confirmed absence after a lookup)
    └── UnknownOutcome               an order was sent and no answer came back: it may exist

`UnknownOutcome` is never retried blindly; the order executor resolves it by looking the order
up by its client order id.
"""

from __future__ import annotations

from core.errors import TradewindError


class ExchangeError(TradewindError):
    """Base of every exchange failure; the message is safe to show a trader."""

    def __init__(self, exchange: str, message: str) -> None:
        self.exchange = exchange
        self.message = message
        super().__init__(message)

    @property
    def kind(self) -> str:
        """Metric label: the class name (RateLimited, AuthFailed, ...)."""
        return type(self).__name__


class TemporaryError(ExchangeError):
    """A failure that may go away by itself."""


class RateLimited(TemporaryError):
    def __init__(self, exchange: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(exchange, message)
        self.retry_after = retry_after


class ExchangeUnavailable(TemporaryError):
    """The venue is down, slow, unreachable or answered garbage."""


class VenueDown(ExchangeUnavailable):
    """The venue failed too often in a row; calls fail fast for `retry_in` seconds
    without a request leaving (`core.exchange.breaker`). Not retried: the wait is long."""

    def __init__(self, exchange: str, message: str, retry_in: float) -> None:
        super().__init__(exchange, message)
        self.retry_in = retry_in


class AccountSetupRequired(ExchangeError):
    """The keys work, but the account needs a setting changed before Tradewind can trade it."""


class AuthFailed(ExchangeError):
    """The credentials were refused."""


class InsufficientFunds(ExchangeError):
    """Not enough available margin."""


class InvalidOrder(ExchangeError):
    """The order's parameters were refused (size, price, symbol, reduce-only...)."""


class OrderNotFound(ExchangeError):
    """The order does not exist on the venue."""


class UnknownOutcome(ExchangeError):
    """The order request got no answer; the order may or may not exist."""

    def __init__(self, exchange: str, message: str, client_order_id: str | None = None) -> None:
        super().__init__(exchange, message)
        self.client_order_id = client_order_id
