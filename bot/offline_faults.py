"""Telegram's failures on demand, for the offline Bot API: flood control, a blocked chat, HTML
Telegram cannot parse, a broken connection before or after the message went out.

`FakeTelegramState.faults.add(...)` arms a fault for the next `times` matching calls; the
state answers them as Telegram would (429 with ``retry_after``, 403, 400) or, for the network
kinds, raises `ConnectionLost`, which `OfflineRequest` turns into PTB's ``NetworkError``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    RETRY_AFTER = "retry_after"  # 429 Too Many Requests, retry after `retry_after` s
    BLOCKED = "blocked"  # 403: the user blocked the bot
    CANT_PARSE = "cant_parse"  # 400 can't parse entities (only calls that ask for a parse mode)
    NETWORK = "network"  # the connection broke before the request arrived: nothing sent
    ANSWER_LOST = "answer_lost"  # the message went out, the answer never came back


@dataclass(slots=True, frozen=True)
class Fired:
    """One fault that met a call, and when (`time.monotonic()`)."""

    kind: FaultKind
    method: str
    chat_id: object
    at: float


class ConnectionLost(Exception):
    """The request's connection broke (`FaultKind.NETWORK` / `ANSWER_LOST`)."""


@dataclass(slots=True)
class ApiFault:
    kind: FaultKind
    method: str  # Bot API method, e.g. "sendMessage"
    chat_id: int | None = None  # None: any chat
    times: int = 1
    retry_after: int = 1
    hits: int = 0

    def matches(self, method: str, params: Mapping[str, Any]) -> bool:
        if self.hits >= self.times or method.lower() != self.method.lower():
            return False
        if self.chat_id is not None and params.get("chat_id") != self.chat_id:
            return False
        return self.kind is not FaultKind.CANT_PARSE or bool(params.get("parse_mode"))


# What Telegram answers for each refusal: (error code, description).
REFUSALS = {
    FaultKind.BLOCKED: (403, "Forbidden: bot was blocked by the user"),
    FaultKind.CANT_PARSE: (
        400,
        "Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 0",
    ),
}


class ApiFaults:
    """The armed faults of one offline Bot API, and every one that fired, in order."""

    def __init__(self) -> None:
        self.armed: list[ApiFault] = []
        self.fired: list[Fired] = []

    def add(
        self,
        kind: FaultKind | str,
        method: str = "sendMessage",
        *,
        chat_id: int | None = None,
        times: int = 1,
        retry_after: int = 1,
    ) -> ApiFault:
        fault = ApiFault(FaultKind(kind), method, chat_id, times, retry_after)
        self.armed.append(fault)
        return fault

    def take(self, method: str, params: Mapping[str, Any]) -> ApiFault | None:
        """The fault this call meets, counted as fired; None when it goes through."""
        for fault in self.armed:
            if fault.matches(method, params):
                fault.hits += 1
                self.fired.append(
                    Fired(fault.kind, method, params.get("chat_id"), time.monotonic())
                )
                self.armed = [f for f in self.armed if f.hits < f.times]
                return fault
        return None

    def count(self, kind: FaultKind | str) -> int:
        return sum(1 for fired in self.fired if fired.kind == kind)
