"""Fault injection, rate limiting and request statistics for the exchange server.

A :class:`FaultPlan` holds :class:`Fault` rules that may be added or removed while the
server runs. For each request the server takes the first matching *terminal* fault (any
kind except ``LATENCY``) plus the sum of all matching ``LATENCY`` faults.
"""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class FaultKind(StrEnum):
    LATENCY = "latency"  # sleep delay_ms, then serve normally (combines with others)
    HTTP_429 = "http_429"  # plain HTTP 429 Too Many Requests
    HTTP_403 = "http_403"  # HTTP 403, what Bybit sends when the IP rate limit is exceeded
    RATE_LIMIT = "rate_limit"  # HTTP 200, retCode 10006 "Too many visits!" + X-Bapi-Limit-* headers
    HTTP_5XX = "http_5xx"  # HTTP ``status`` (default 503), non-JSON body
    RET_CODE = "ret_code"  # HTTP 200 with an arbitrary retCode/retMsg (e.g. 10016 system error)
    MALFORMED = "malformed"  # HTTP 200, Content-Type JSON, body is not valid JSON
    TRUNCATED = "truncated"  # Content-Length promises more than is sent, then the socket closes
    DROP = "drop"  # close the connection without processing the request
    ACCEPT_THEN_DROP = "accept_then_drop"  # process the request (order IS created), then close
    ACCEPT_THEN_HANG = "accept_then_hang"  # process the request, never answer (client times out)
    HANG = "hang"  # never answer and do nothing (the client times out; nothing was executed)
    RESET = "reset"  # abort the connection with a TCP RST before processing


TERMINAL_BEFORE = {
    FaultKind.HTTP_429,
    FaultKind.HTTP_403,
    FaultKind.RATE_LIMIT,
    FaultKind.HTTP_5XX,
    FaultKind.RET_CODE,
    FaultKind.DROP,
    FaultKind.HANG,
    FaultKind.RESET,
}


@dataclass
class Fault:
    kind: FaultKind
    path: str | None = None  # exact path such as "/v5/order/create"; None = every path
    method: str | None = None  # "GET" / "POST"; None = any
    times: int | None = 1  # how many requests it hits; None = until removed
    delay_ms: float = 0.0  # LATENCY only
    status: int = 503  # HTTP_5XX only
    ret_code: int = 10016  # RET_CODE only
    ret_msg: str = "Internal System Error."
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return (self.path is None or self.path == path) and (
            self.method is None or self.method.upper() == method
        )

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times


@dataclass
class Chaos:
    """A random fault on a share of the requests: each request is hit with probability
    `rate`, by a kind drawn from `kinds` (a kind whose `paths` entry is set only hits those
    paths, so accept-then-drop stays on order creation). Reproducible with `seed`."""

    rate: float
    kinds: Sequence[FaultKind]
    seed: int = 0
    paths: dict[FaultKind, str] = field(default_factory=dict)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def draw(self, path: str) -> Fault | None:
        if self.rng.random() >= self.rate:
            return None
        kinds = [k for k in self.kinds if self.paths.get(k, path) == path]
        if not kinds:
            return None
        return Fault(self.rng.choice(kinds), path, times=None)


@dataclass(slots=True, frozen=True)
class Injected:
    """One fault that hit a request: when, which account (its API key; "" if public), where."""

    at: float
    key: str
    kind: str
    path: str


class FaultPlan:
    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.chaos: Chaos | None = None
        self.log: deque[Injected] = deque(maxlen=200_000)

    def add(
        self,
        path: str | None = None,
        kind: FaultKind | str = FaultKind.HTTP_5XX,
        times: int | None = 1,
        *,
        method: str | None = None,
        delay_ms: float = 0.0,
        status: int = 503,
        ret_code: int = 10016,
        ret_msg: str = "Internal System Error.",
    ) -> Fault:
        fault = Fault(FaultKind(kind), path, method, times, delay_ms, status, ret_code, ret_msg)
        self.faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        if fault in self.faults:
            self.faults.remove(fault)

    def clear(self) -> None:
        self.faults.clear()

    def take(self, method: str, path: str) -> tuple[float, Fault | None]:
        """Consume the faults for one request: (extra latency ms, terminal fault or None)."""
        delay, terminal = 0.0, None
        for fault in self.faults:
            if not fault.matches(method, path):
                continue
            if fault.kind is FaultKind.LATENCY:
                fault.hits += 1
                delay += fault.delay_ms
            elif terminal is None:
                fault.hits += 1
                terminal = fault
        self.faults = [f for f in self.faults if not f.exhausted]
        if terminal is None and self.chaos is not None:
            terminal = self.chaos.draw(path)
        return delay, terminal

    def note(self, key: str, fault: Fault, path: str) -> None:
        """Remember an injected fault for a test driver to attribute it (`GET /test/faults`)."""
        self.log.append(Injected(time.time(), key, fault.kind.value, path))


class TokenBucket:
    """``rate`` requests/second with a burst of ``burst`` (default: one second's worth)."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = burst if burst is not None else max(rate, 1.0)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def try_acquire(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def reset_at_ms(self) -> int:
        """Wall-clock ms when the next token becomes available."""
        wait = max(0.0, (1 - self.tokens) / self.rate)
        return int((time.time() + wait) * 1000)


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)  # path -> count (all requests)
    by_method: Counter[tuple[str, str]] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)  # FaultKind value -> injected count
    rate_limited: int = 0  # refusals by the token bucket
    auth_failures: int = 0
    by_key: Counter[str] = field(default_factory=Counter)  # signed requests per API key

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def reset(self) -> None:
        self.requests.clear()
        self.by_method.clear()
        self.faults.clear()
        self.by_key.clear()
        self.rate_limited = self.auth_failures = 0
