"""Promo codes and their redemptions: counted with one conditional statement, race-free."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms, from_ms_req, to_ms
from db.store import Row, Tx


@dataclass(slots=True, frozen=True)
class PromoRecord:
    code: str
    plan: str
    days: int
    max_uses: int
    uses: int
    valid_until: datetime | None
    active: bool
    created_by: int
    created_at: datetime

    def expired(self, now: datetime) -> bool:
        return self.valid_until is not None and self.valid_until <= now


_COLUMNS = "code, plan, days, max_uses, uses, valid_until, active, created_by, created_at"
_INSERT = """
INSERT INTO promo_codes (code, plan, days, max_uses, valid_until, created_by, created_at)
VALUES (:code, :plan, :days, :max_uses, :valid_until, :created_by, :now)
ON CONFLICT (code) DO NOTHING
"""
_GET = f"SELECT {_COLUMNS} FROM promo_codes WHERE code = ?"
# The whole admission rule in one statement: under the writer lock, the first caller to
# take the last use wins and every later one matches no row.
_TAKE_USE = f"""
UPDATE promo_codes SET uses = uses + 1
WHERE code = :code AND active = 1 AND uses < max_uses
  AND (valid_until IS NULL OR valid_until > :now)
RETURNING {_COLUMNS}
"""
_REDEEM = """
INSERT INTO promo_redemptions (code, user_id, redeemed_at) VALUES (:code, :user_id, :now)
ON CONFLICT (code, user_id) DO NOTHING
"""
_REDEEMED = "SELECT 1 FROM promo_redemptions WHERE code = ? AND user_id = ?"
_DISABLE = "UPDATE promo_codes SET active = 0 WHERE code = ? AND active = 1"
_PAGE = f"SELECT {_COLUMNS} FROM promo_codes ORDER BY created_at DESC LIMIT ? OFFSET ?"
_COUNT = "SELECT COUNT(*) FROM promo_codes"

HOT_QUERIES = (
    HotQuery("promos.get", _GET, ("WELCOME",)),
    HotQuery("promos.take_use", _TAKE_USE, {"code": "WELCOME", "now": 0}),
    HotQuery("promos.redeemed", _REDEEMED, ("WELCOME", 1)),
    HotQuery("promos.page", _PAGE, (20, 0)),
)


class PromoRepository(Repository):
    """SQL for promo_codes and promo_redemptions."""

    async def create(
        self,
        code: str,
        plan: str,
        days: int,
        max_uses: int,
        valid_until: datetime | None,
        created_by: int,
        now: datetime,
        tx: Tx | None = None,
    ) -> bool:
        """Store a new code; False when one with that name (in any case) exists."""
        params = {
            "code": code,
            "plan": plan,
            "days": days,
            "max_uses": max_uses,
            "valid_until": None if valid_until is None else to_ms(valid_until),
            "created_by": created_by,
            "now": to_ms(now),
        }
        async with self._tx(tx) as t:
            return await t.execute("promos.create", _INSERT, params) == 1

    async def get(self, code: str) -> PromoRecord | None:
        row = await self.store.fetchone("promos.get", _GET, (code,))
        return None if row is None else _record(row)

    async def take_use(self, code: str, now: datetime, tx: Tx) -> PromoRecord | None:
        """Count one use if the code is active, unexpired and not used up; else None."""
        params = {"code": code, "now": to_ms(now)}
        row = await tx.fetchone("promos.take_use", _TAKE_USE, params)
        return None if row is None else _record(row)

    async def add_redemption(self, code: str, user_id: int, now: datetime, tx: Tx) -> bool:
        """Record that `user_id` redeemed `code`; False if they already had."""
        params = {"code": code, "user_id": user_id, "now": to_ms(now)}
        return await tx.execute("promos.redeem", _REDEEM, params) == 1

    async def redeemed_by(self, code: str, user_id: int) -> bool:
        row = await self.store.fetchone("promos.redeemed", _REDEEMED, (code, user_id))
        return row is not None

    async def disable(self, code: str, tx: Tx | None = None) -> bool:
        """Stop a code from being redeemed; False if unknown or already disabled."""
        async with self._tx(tx) as t:
            return await t.execute("promos.disable", _DISABLE, (code,)) == 1

    async def page(self, limit: int, offset: int) -> tuple[list[PromoRecord], int]:
        """Codes newest first, and how many there are in all."""
        rows = await self.store.fetchall("promos.page", _PAGE, (limit, offset))
        total = await self.store.fetchval("promos.count", _COUNT)
        return [_record(row) for row in rows], int(total)


def _record(row: Row) -> PromoRecord:
    return PromoRecord(
        code=row["code"],
        plan=row["plan"],
        days=row["days"],
        max_uses=row["max_uses"],
        uses=row["uses"],
        valid_until=from_ms(row["valid_until"]),
        active=bool(row["active"]),
        created_by=row["created_by"],
        created_at=from_ms_req(row["created_at"]),
    )
