"""Bybit's query-api answer read as a key's health: classic and unified permissions."""

from __future__ import annotations

from typing import Any

import pytest

from core.exchange.bybit import key_info_from_bybit
from core.exchange.key_info import KeyInfo


def answer(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "readOnly": 0,
        "permissions": {"ContractTrade": ["Order", "Position"], "Wallet": ["AccountTransfer"]},
        "ips": ["203.0.113.7"],
    }
    return {**base, **over}


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (answer(), KeyInfo(reported=True)),
        (answer(readOnly=1), KeyInfo(reported=True, can_trade=False)),
        (answer(readOnly="1"), KeyInfo(reported=True, can_trade=False)),
        (
            answer(permissions={"Derivatives": ["DerivativesTrade"]}),  # a unified account's key
            KeyInfo(reported=True),
        ),
        (answer(permissions={"Spot": ["SpotTrade"]}), KeyInfo(reported=True, can_trade=False)),
        (
            answer(permissions={"ContractTrade": ["Order"], "Wallet": ["Withdraw"]}),
            KeyInfo(reported=True, can_withdraw=True),
        ),
        (answer(ips=["*"]), KeyInfo(reported=True, ip_restricted=False)),
        (answer(ips=[]), KeyInfo(reported=True, ip_restricted=False)),
        (answer(ips=None), KeyInfo(reported=True, ip_restricted=False)),
    ],
)
def test_query_api_answer_becomes_key_info(result: dict[str, Any], expected: KeyInfo) -> None:
    assert key_info_from_bybit(result) == expected
