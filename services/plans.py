"""The licence plans on offer (from `TRADEWIND_PLANS`): what each grants and costs in Stars."""

from __future__ import annotations

from collections.abc import Iterable

from core.config import Plan
from core.errors import InvalidInput

__all__ = ["Plan", "PlanCatalog"]

DEFAULT_PLAN = "pro"


class PlanCatalog:
    """Looks plans up by name (any case) and lists the ones sold for Stars."""

    def __init__(self, plans: Iterable[Plan]) -> None:
        self._plans = {plan.name: plan for plan in plans}

    @property
    def names(self) -> list[str]:
        return list(self._plans)

    @property
    def default(self) -> str:
        """The plan an admin grant or a promo uses when none is named."""
        return DEFAULT_PLAN if DEFAULT_PLAN in self._plans else next(iter(self._plans))

    def find(self, name: str) -> Plan | None:
        return self._plans.get(name.lower())

    def get(self, name: str) -> Plan:
        """The named plan, or a refusal that lists the plans there are."""
        plan = self.find(name)
        if plan is None:
            raise InvalidInput(f"There is no plan {name!r}; plans: {', '.join(self.names)}.")
        return plan

    def for_sale(self) -> list[Plan]:
        """Plans that can be bought with Stars (a price above zero)."""
        return [plan for plan in self._plans.values() if plan.stars > 0]
