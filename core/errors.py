"""Errors that cross layers.

    TradewindError
    ├── ConfigError            bad environment; stops start-up with one line
    ├── StoreError             the database is unusable (failed integrity check, closed store)
    └── DomainError            a business rule refused the request; its text is shown to the user
        ├── NotFound
        ├── Forbidden
        └── InvalidInput

Exchange errors get their own tree in `core.exchange.errors`.
"""

from __future__ import annotations


class TradewindError(Exception):
    """Base of every error Tradewind raises on purpose."""


class ConfigError(TradewindError):
    """One environment variable has a bad value."""

    def __init__(self, variable: str, problem: str, example: str) -> None:
        self.variable = variable
        self.problem = problem
        self.example = example
        super().__init__(f"{variable}: {problem} (example: {variable}={example})")


class StoreError(TradewindError):
    """The store cannot serve: integrity check failed, or used after close."""


class DomainError(TradewindError):
    """A business rule refused the request; `str(err)` is safe to show the user."""


class NotFound(DomainError):
    """The thing asked for does not exist (or is not the caller's)."""


class Forbidden(DomainError):
    """The caller may not do this."""


class InvalidInput(DomainError):
    """The input is malformed or out of range; the message says how to do it right."""
