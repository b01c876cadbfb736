"""Reading OKX's algo rows and bill types: which level a position has, which order a leg
sent, which fills closed or were a liquidation."""

from __future__ import annotations

from decimal import Decimal

from core.exchange import okx_algos as algos

BTC, ETH = "BTC-USDT-SWAP", "ETH-USDT-SWAP"


def _row(inst: str, algo_id: int, tp: str = "", sl: str = "", whole: bool = False) -> dict:
    return {"instId": inst, "algoId": str(algo_id), "tpTriggerPx": tp, "slTriggerPx": sl,
            "closeFraction": "1" if whole else ""}  # fmt: skip


def test_a_whole_position_algo_wins_else_the_newest_leg() -> None:
    rows = [  # newest first, as OKX lists them
        _row(BTC, 4, sl="58000"),
        _row(BTC, 3, tp="63000", sl="57000", whole=True),
        _row(BTC, 2, tp="61000"),
        _row(ETH, 1, tp="3100"),
    ]
    assert algos.levels(rows) == {
        BTC: (Decimal(63000), Decimal(57000)),
        ETH: (Decimal(3100), None),
    }
    assert algos.levels(rows[:1] + rows[2:3]) == {BTC: (Decimal(61000), Decimal(58000))}


def test_a_change_keeps_removes_or_replaces_a_level() -> None:
    assert algos.level(Decimal(5), None) == Decimal(5)
    assert algos.level(Decimal(5), Decimal(0)) is None
    assert algos.level(None, Decimal(7)) == Decimal(7)


def test_the_orders_legs_sent_are_named_by_their_side() -> None:
    rows = [
        {"actualSide": "tp", "ordId": "11", "ordIdList": ["11"]},
        {"actualSide": "sl", "ordId": "", "ordIdList": ["12"]},
        {"actualSide": "", "ordId": "13"},  # cancelled before it fired
    ]
    assert algos.sent_orders(rows) == {"11": "take_profit", "12": "stop_loss"}


def test_bill_types_say_what_closed_and_what_was_liquidated() -> None:
    assert [algos.closing(t) for t in ("3", "4", "5", "6", "104", "126", "", None)] == [
        False, False, True, True, True, True, None, None,
    ]  # fmt: skip
    assert [algos.liquidated(t) for t in ("5", "100", "104", "107", "126")] == [
        False, True, True, True, False,
    ]  # fmt: skip


def test_cancels_go_ten_a_request_and_a_new_algo_closes_the_whole_position() -> None:
    batches = list(algos.cancel_batches(_row(BTC, n) for n in range(23)))
    assert [len(b) for b in batches] == [10, 10, 3]
    assert batches[0][0] == {"algoId": "0", "instId": BTC}
    request = algos.whole_position(BTC, "sell", None, Decimal("59000.5"), "twcid")
    assert request == {
        "instId": BTC, "tdMode": "cross", "side": "sell", "closeFraction": "1",
        "reduceOnly": "true", "ordType": "conditional", "algoClOrdId": "twcid",
        "slTriggerPx": "59000.5", "slOrdPx": "-1", "slTriggerPxType": "last",
    }  # fmt: skip
    both = algos.whole_position(BTC, "buy", Decimal(1), Decimal(2), "twcid")
    assert both["ordType"] == "oco" and both["tpOrdPx"] == "-1"
