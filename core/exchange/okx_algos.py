"""OKX's TP/SL algo orders as Tradewind reads and writes them (`core.exchange.okx`).

A take profit or stop loss on OKX is an algo order: `conditional` (one leg) or `oco` (both),
either attached to an entry (then sized to its fill) or covering the whole position
(`closeFraction` "1", reduce-only). A leg whose `tpOrdPx`/`slOrdPx` is "-1" sends a market
order when the last price crosses its trigger; the algo history then names the leg that
fired (`actualSide`) and the order it sent (`ordId`). Fills carry OKX's bill `subType`:
3/4 open long/short, 5/6 close long/short, 100-107 (partial) liquidation, 125-128
auto-deleveraging.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from core.exchange import ccxt_parse as parse
from core.exchange.models import ZERO

KINDS = "conditional,oco"  # the algo types that carry TP/SL legs, asked for together
CANCEL_BATCH = 10  # the most algos one cancel-algos request names
LIQUIDATION = "liquidation"
_OPENING = frozenset({"3", "4"})
_CLOSING = frozenset({"5", "6", *(str(n) for n in range(100, 108)), "125", "126", "127", "128"})
_LIQUIDATED = frozenset(str(n) for n in range(100, 108))
_LEGS = {"tp": "take_profit", "sl": "stop_loss"}

Levels = tuple[Decimal | None, Decimal | None]  # (take profit, stop loss)


def closing(sub_type: object) -> bool | None:
    """Whether a fill closed position (None where its `subType` does not say)."""
    text = str(sub_type or "")
    if text in _CLOSING:
        return True
    return False if text in _OPENING else None


def liquidated(sub_type: object) -> bool:
    return str(sub_type or "") in _LIQUIDATED


def sent_orders(rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Order id → the trigger that sent it, from algo-history rows that fired."""
    sent: dict[str, str] = {}
    for row in rows:
        trigger = _LEGS.get(str(row.get("actualSide") or ""))
        if trigger is None:
            continue
        ids = [str(i) for i in row.get("ordIdList") or []] + [str(row.get("ordId") or "")]
        sent.update({order_id: trigger for order_id in ids if order_id})
    return sent


def levels(rows: Iterable[Mapping[str, Any]]) -> dict[str, Levels]:
    """Each instrument's TP and SL from its pending algos (given newest first, as OKX
    lists them): a whole-position algo's legs win, else the newest algo's with that leg."""
    found: dict[str, list[Decimal | None]] = {}
    ranked = sorted(reversed(list(rows)), key=lambda r: str(r.get("closeFraction") or "") == "1")
    for row in ranked:  # oldest first, whole-position ones last: later ones win
        legs = found.setdefault(str(row.get("instId")), [None, None])
        for n, key in enumerate(("tpTriggerPx", "slTriggerPx")):
            value = parse.dec(row.get(key) or None)
            if value:
                legs[n] = value
    return {inst: (legs[0], legs[1]) for inst, legs in found.items()}


def level(current: Decimal | None, asked: Decimal | None) -> Decimal | None:
    """None keeps the current level, zero removes it, a price replaces it."""
    if asked is None:
        return current
    return None if asked == ZERO else asked


def cancel_batches(rows: Iterable[Mapping[str, Any]]) -> Iterator[list[dict[str, str]]]:
    """`cancel-algos` bodies naming the given algos, at most `CANCEL_BATCH` each."""
    named = [{"algoId": str(r["algoId"]), "instId": str(r["instId"])} for r in rows]
    for start in range(0, len(named), CANCEL_BATCH):
        yield named[start : start + CANCEL_BATCH]


def whole_position(
    inst: str, side: str, tp: Decimal | None, sl: Decimal | None, cid: str
) -> dict[str, str]:
    """An `order-algo` request closing the whole position at market when a leg fires."""
    request = {
        "instId": inst, "tdMode": "cross", "side": side, "closeFraction": "1",
        "reduceOnly": "true", "ordType": "oco" if tp and sl else "conditional",
        "algoClOrdId": cid,
    }  # fmt: skip
    for leg, price in (("tp", tp), ("sl", sl)):
        if price:
            request |= {f"{leg}TriggerPx": format(price, "f"), f"{leg}OrdPx": "-1",
                        f"{leg}TriggerPxType": "last"}  # fmt: skip
    return request
