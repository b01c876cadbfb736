"""A circuit breaker per venue: stop calling an exchange that stopped answering.

A venue is one exchange and one account type (`bybit/live`, `bybit/demo`, ...): demo and
testnet accounts live on other hosts than live ones, so one of them failing says nothing
about the others. The public market-data client counts towards its exchange's `live`.

    closed ──N outages in a row──▶ open ──cooldown over──▶ half_open ──probe answered──▶ closed
                                     ▲                          │
                                     └──────probe failed────────┘

An outage is a failure of the venue itself: a timeout, a dropped or refused connection, a
5xx, a garbled answer. Any answer from the venue, even a refusal (insufficient margin, an
invalid order, a bad key, rate limiting), proves it is there and resets the count. While
open, calls fail fast with `VenueDown` and no request leaves; after the cooldown one call is
let through as the probe while the others keep failing fast.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import StrEnum

from core.clock import Clock
from core.exchange.errors import VenueDown
from core.exchange.venues import title
from core.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class BreakerPolicy:
    """`failures` outages in a row open the breaker for `cooldown_s` seconds."""

    failures: int = 5
    cooldown_s: float = 30.0


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# /metrics gauge values, in order of alarm.
GAUGE = {BreakerState.CLOSED: 0.0, BreakerState.HALF_OPEN: 1.0, BreakerState.OPEN: 2.0}


class CircuitBreaker:
    """The breaker of one venue. Call `admit` before a request, then exactly one of
    `answered`, `failed` or `abandoned` (cancelled, no verdict)."""

    def __init__(
        self,
        exchange: str,
        account_type: str,
        policy: BreakerPolicy,
        clock: Clock,
        metrics: Metrics | None = None,
    ) -> None:
        self.exchange = exchange
        self.account_type = account_type
        self._policy = policy
        self._clock = clock
        self._metrics = metrics
        self.state = BreakerState.CLOSED
        self.failures = 0  # outages in a row
        self.opened = 0  # times opened since start
        self._opened_at = 0.0
        self._probing = False

    @property
    def name(self) -> str:
        return f"{self.exchange}/{self.account_type}"

    def retry_in(self) -> float:
        """Seconds until a probe may be sent (0 when one may go now)."""
        if self.state is BreakerState.CLOSED:
            return 0.0
        left = self._opened_at + self._policy.cooldown_s - self._clock.monotonic()
        return max(0.0, left)

    def admit(self) -> None:
        """Let a request go, or raise `VenueDown` without sending anything."""
        if self.state is BreakerState.CLOSED:
            return
        if self.state is BreakerState.OPEN and self.retry_in() == 0:
            self.state = BreakerState.HALF_OPEN
            log.info("%s: cooldown over, probing", self.name)
        if self.state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True  # this request is the probe
            return
        self._refuse()

    def answered(self) -> None:
        """The venue answered (successfully or with a refusal of its own)."""
        if self.state is not BreakerState.CLOSED:
            log.info("%s answered again: breaker closed", self.name)
        self.state = BreakerState.CLOSED
        self.failures = 0
        self._probing = False

    def failed(self) -> None:
        """The venue did not answer usefully (timeout, connection, 5xx, garbage)."""
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or (
            self.state is BreakerState.CLOSED and self.failures >= self._policy.failures
        ):
            self._open()
        self._probing = False

    def abandoned(self) -> None:
        """The request ended without a verdict (cancelled): free the probe's place."""
        self._probing = False

    def _open(self) -> None:
        was_closed = self.state is BreakerState.CLOSED
        self.state = BreakerState.OPEN
        self._opened_at = self._clock.monotonic()
        if was_closed:
            self.opened += 1
            log.warning(
                "%s failed %d times in a row: failing fast for %g s",
                self.name,
                self.failures,
                self._policy.cooldown_s,
            )
            if self._metrics is not None:
                self._metrics.breaker_opened.labels(self.name).inc()

    def _refuse(self) -> None:
        if self._metrics is not None:
            self._metrics.breaker_refused.labels(self.name).inc()
        wait = max(1, math.ceil(self.retry_in()))
        raise VenueDown(
            self.exchange,
            f"{title(self.exchange)} is not answering; trying again in {wait} s",
            retry_in=wait,
        )


class BreakerBoard:
    """Every venue's breaker, created on first use; `policy=None` turns them all off."""

    def __init__(
        self, policy: BreakerPolicy | None, clock: Clock, metrics: Metrics | None = None
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._metrics = metrics
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}
        if metrics is not None and policy is not None:
            metrics.watch_gauges(
                "tradewind_exchange_breaker",
                "Circuit breaker per exchange/account type: 0 closed, 1 half-open, 2 open",
                self.gauges,
            )

    def breaker(self, exchange: str, account_type: str) -> CircuitBreaker | None:
        if self.policy is None:
            return None
        key = (exchange, account_type)
        found = self._breakers.get(key)
        if found is None:
            found = CircuitBreaker(exchange, account_type, self.policy, self._clock, self._metrics)
            self._breakers[key] = found
        return found

    def gauges(self) -> dict[str, float]:
        return {b.name: GAUGE[b.state] for b in self._breakers.values()}

    def report(self) -> dict[str, object]:
        """The /health view: each venue's state, outages in a row, times opened, wait."""
        return {
            b.name: {
                "state": str(b.state),
                "failures": b.failures,
                "opened": b.opened,
                "retry_in_s": round(b.retry_in(), 1),
            }
            for b in sorted(self._breakers.values(), key=lambda b: b.name)
        }
