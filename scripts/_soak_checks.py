"""The crash soak's verdict: the database, the exchange's books and what Telegram received,
compared after the last (clean) run. Each check is one row of the printed table."""

from __future__ import annotations

import html
import json
import re
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.botapi_server import BotApiServer

JSONDict = dict[str, Any]
UNRESOLVED = ("pending", "sent", "unknown")
PLACED = ("open", "filled")  # an intent in one of these has exactly one order on the venue
_TAG = re.compile(r"<[^>]+>")


@dataclass(slots=True, frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def crash_checks(
    db: Path,
    orders: Sequence[JSONDict],
    telegram: BotApiServer,
    *,
    kills: int,
    charges: Sequence[str],
    admin: int,
    traders: Sequence[int],
    key_of: Callable[[int], str],
    least: Counter[str],
) -> list[Check]:
    """`least`: how many orders, deliveries and payments the workload must have made."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        checks = [_integrity(conn)]
        checks += _orders(conn, orders, least["orders"])
        checks.append(_promos(conn))
        checks.append(_payments(conn, charges, least["payments"]))
        checks += _deliveries(conn, telegram, kills, admin, least["deliveries"])
        checks.append(_ledger(conn, orders, traders, key_of))
    return checks


def order_checks(db: Path, orders: Sequence[JSONDict]) -> list[Check]:
    """Integrity and the orders against the venue's books, on their own (the fault soak)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        return [_integrity(conn), *_orders(conn, orders, 1)]


def _integrity(conn: sqlite3.Connection) -> Check:
    result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    return Check("PRAGMA integrity_check", result == ["ok"], "; ".join(result)[:200])


def _orders(conn: sqlite3.Connection, orders: Sequence[JSONDict], least: int) -> list[Check]:
    intents = {
        row["client_order_id"]: row["status"]
        for row in conn.execute("SELECT client_order_id, status FROM order_intents")
    }
    ours = [o for o in orders if o["link_id"]]  # TP/SL legs the venue makes carry no link id
    per_link = Counter(o["link_id"] for o in ours)
    twice = [link for link, n in per_link.items() if n > 1]
    orphans = [link for link in per_link if link not in intents]
    lost = [cid for cid, status in intents.items() if status in PLACED and cid not in per_link]
    ghost = [cid for cid, status in intents.items() if status == "rejected" and cid in per_link]
    unresolved = Counter(status for status in intents.values() if status in UNRESOLVED)
    statuses = Counter(intents.values())
    return [
        Check(
            "every intent matches at most one exchange order",
            not twice and not orphans,
            f"{len(ours)} orders on the venue for {len(intents)} intents "
            f"({_counts(statuses)}); {len(twice)} ids placed twice, {len(orphans)} orders "
            "without an intent",
        ),
        Check(
            "intents agree with the venue's books",
            not lost and not ghost,
            f"{len(lost)} settled as placed but absent, {len(ghost)} settled as rejected but "
            "present",
        ),
        Check(
            "every unknown outcome resolved",
            not unresolved,
            f"{sum(unresolved.values())} left pending/sent/unknown",
        ),
        Check("orders placed", len(ours) >= least, f"{len(ours)} orders on the venue"),
    ]


def _promos(conn: sqlite3.Connection) -> Check:
    rows = conn.execute(
        "SELECT p.code, p.uses, p.max_uses, COUNT(r.id) AS redeemed FROM promo_codes p "
        "LEFT JOIN promo_redemptions r ON r.code = p.code GROUP BY p.code"
    ).fetchall()
    bad = [r["code"] for r in rows if r["uses"] > r["max_uses"] or r["uses"] != r["redeemed"]]
    uses = ", ".join(f"{r['code']} {r['uses']}/{r['max_uses']}" for r in rows)
    return Check("promo uses never exceed max", bool(rows) and not bad, uses or "no promo codes")


def _payments(conn: sqlite3.Connection, charges: Sequence[str], least: int) -> Check:
    credited = Counter(
        row[0] for row in conn.execute("SELECT telegram_payment_charge_id FROM payments")
    )
    audited = Counter(
        row[0].removeprefix("charge:")
        for row in conn.execute("SELECT target FROM audit_log WHERE action = 'payment'")
    )
    wrong = [c for c in charges if credited[c] != 1 or audited[c] != 1]
    return Check(
        "each payment credited once",
        len(charges) >= least and not wrong and sum(credited.values()) == len(charges),
        f"{len(charges)} paid, {sum(credited.values())} credited, "
        f"{sum(audited.values())} licence extensions audited; {len(wrong)} wrong",
    )


def _deliveries(
    conn: sqlite3.Connection, telegram: BotApiServer, kills: int, admin: int, least: int
) -> list[Check]:
    """Each outbox row against the messages its chat received: at least once when marked
    sent, and no more copies beyond one per crash overall."""
    received: dict[int, list[str]] = defaultdict(list)
    for call in telegram.calls:
        if call.method == "sendMessage" and isinstance(call.result, dict):
            received[int(call.result["chat"]["id"])].append(str(call.result.get("text", "")))
    wanted: Counter[tuple[int, str]] = Counter()
    sent_rows: list[tuple[int, str]] = []
    for row in conn.execute("SELECT chat_id, kind, payload, status FROM notifications"):
        if row["kind"] == "broadcast" and int(row["chat_id"]) == admin:
            continue  # the admin's chat also holds the draft's preview: not countable
        needle = _needle(json.loads(row["payload"])["text"])
        key = (int(row["chat_id"]), needle)
        wanted[key] += 1
        if row["status"] == "sent":
            sent_rows.append(key)
    extra, missing, worst = 0, 0, 0
    for key, rows in wanted.items():
        chat, needle = key
        got = sum(needle in text for text in received.get(chat, ()))
        extra += max(0, got - rows)
        worst = max(worst, got - rows)
        missing += sum(1 for k in sent_rows if k == key) > got
    delivered = len(sent_rows)
    return [
        Check(
            "each delivery sent at most once, plus at most one duplicate per crash",
            extra <= kills and worst <= kills,
            f"{delivered} deliveries sent, {extra} duplicates after {kills} crashes",
        ),
        Check(
            "every delivery marked sent was received",
            missing == 0,
            f"{missing} marked sent but never received",
        ),
        Check("deliveries sent", delivered >= least, f"{delivered} outbox rows sent"),
    ]


def _ledger(
    conn: sqlite3.Connection,
    orders: Sequence[JSONDict],
    traders: Sequence[int],
    key_of: Callable[[int], str],
) -> Check:
    """What each trader closed on the venue equals what the trade ledger holds."""
    closed_on_venue: Counter[int] = Counter()
    by_key = {key_of(uid): uid for uid in traders}
    for order in orders:
        if order["reduce_only"] and order["key"] in by_key:
            closed_on_venue[by_key[order["key"]]] += Decimal(order["filled"])  # type: ignore[assignment]
    logged: Counter[int] = Counter()
    for row in conn.execute("SELECT user_id, qty FROM trade_logs"):
        logged[int(row["user_id"])] += Decimal(row["qty"])  # type: ignore[assignment]
    missing = {uid: closed_on_venue[uid] - logged[uid] for uid in traders}
    wrong = {uid: gap for uid, gap in missing.items() if gap != 0}
    total = sum(closed_on_venue.values(), Decimal(0))
    return Check(
        "no trade missing from the ledger",
        not wrong,
        f"closed on the venue {total} BTC, in the ledger "
        f"{sum(logged.values(), Decimal(0))} BTC; traders off: {wrong or 'none'}",
    )


def _needle(text: str) -> str:
    """A message's first line as Telegram shows it (tags parsed away)."""
    plain = html.unescape(_TAG.sub("", text)).strip()
    return plain.splitlines()[0][:80] if plain else ""


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counter.most_common())
