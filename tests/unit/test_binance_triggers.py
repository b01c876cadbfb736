"""What sent a Binance order, from its REST row and from its pushed ORDER_TRADE_UPDATE as
the real ccxt.pro parses it into a trade of the account."""

from __future__ import annotations

from typing import Any

import ccxt.pro as ccxt_pro
import pytest

from core.exchange.binance import order_trigger
from core.exchange.streams import stream_fill


@pytest.mark.parametrize(
    ("row", "trigger"),
    [
        ({"clientOrderId": "x1", "type": "TAKE_PROFIT_MARKET", "origType": "TAKE_PROFIT_MARKET"},
         "take_profit"),
        ({"clientOrderId": "x2", "type": "MARKET", "origType": "STOP_MARKET"}, "stop_loss"),
        ({"clientOrderId": "x3", "type": "TRAILING_STOP_MARKET"}, "stop_loss"),
        ({"clientOrderId": "autoclose-1596107620040000020", "type": "LIMIT", "origType": "LIMIT"},
         "liquidation"),
        ({"clientOrderId": "adl_autoclose", "type": "LIMIT", "origType": "LIMIT"}, "liquidation"),
        ({"clientOrderId": "twmanual7abc", "type": "MARKET", "origType": "MARKET"}, None),
        ({"clientOrderId": "settlement_autoclose-1", "type": "MARKET"}, None),
    ],
)  # fmt: skip
def test_an_orders_row_names_what_sent_it(row: dict[str, Any], trigger: str | None) -> None:
    assert order_trigger(row) == trigger


@pytest.fixture
def pro() -> Any:
    return ccxt_pro.binanceusdm()  # parsing only: it opens no connection


def _pushed(cid: str, kind: str, original: str) -> dict[str, Any]:
    """The order of an ORDER_TRADE_UPDATE for a trade (Binance's documented shape)."""
    return {
        "s": "BTCUSDT", "c": cid, "S": "SELL", "o": kind, "f": "GTC", "q": "0.01",
        "p": "0", "ap": "61800", "sp": "0", "x": "TRADE", "X": "FILLED", "i": 8389765,
        "l": "0.01", "z": "0.01", "L": "61800", "n": "0.34", "N": "USDT",
        "T": 1_700_000_000_000, "t": 4221, "b": "0", "a": "0", "m": False, "R": True,
        "wt": "CONTRACT_PRICE", "ot": original, "ps": "BOTH", "cp": True, "rp": "18",
        "pP": False, "si": 0, "ss": 0, "V": "EXPIRE_TAKER", "pm": "NONE", "gtd": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("cid", "kind", "original", "trigger"),
    [
        ("tw1tp", "MARKET", "TAKE_PROFIT_MARKET", "take_profit"),
        ("tw1sl", "MARKET", "STOP_MARKET", "stop_loss"),
        ("autoclose-1700000000000001", "LIQUIDATION", "LIQUIDATION", "liquidation"),
        ("adl_autoclose", "MARKET", "MARKET", "liquidation"),
        ("tw1close", "MARKET", "MARKET", None),
    ],
)
def test_a_pushed_binance_fill_names_what_sent_its_order(
    pro: Any, cid: str, kind: str, original: str, trigger: str | None
) -> None:
    trade = pro.parse_ws_trade(_pushed(cid, kind, original))

    fill = stream_fill(trade)

    assert (fill.fill_id, fill.order_id, fill.trigger) == ("4221", "8389765", trigger)
    # Its client id and Binance's realised PnL: a close Tradewind sent is known as its own.
    assert (fill.client_order_id, fill.realised_pnl) == (cid, 18)


def test_a_bybit_execution_is_not_read_as_a_binance_order() -> None:
    execution = {
        "id": "e1", "order": "o1", "symbol": "BTC/USDT:USDT", "side": "sell",
        "price": 61800, "amount": 0.01, "timestamp": 1_700_000_000_000,
        "info": {"execId": "e1", "orderId": "o1", "orderLinkId": "", "orderType": "Market",
                 "stopOrderType": "TakeProfit", "closedSize": "0.01", "execPnl": "18"},
    }  # fmt: skip

    assert stream_fill(execution).trigger == "take_profit"
