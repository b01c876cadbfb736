"""TRADEWIND_PLANS: licence plans, their days and Stars prices, and the catalogue over them."""

from __future__ import annotations

import pytest

from core.config import DEFAULT_PLANS, Plan, load_settings
from core.errors import ConfigError, InvalidInput
from services.plans import PlanCatalog


def test_default_plans_are_trial_and_pro() -> None:
    assert load_settings({}).plans == DEFAULT_PLANS == (Plan("trial", 7, 0), Plan("pro", 30, 500))


def test_plans_are_parsed_in_order() -> None:
    plans = load_settings({"TRADEWIND_PLANS": " Pro:30:500 , week:7:150,trial:3:0"}).plans
    assert plans == (Plan("pro", 30, 500), Plan("week", 7, 150), Plan("trial", 3, 0))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("pro", "'pro' is not name:days:stars"),
        ("pro:30", "'pro:30' is not name:days:stars"),
        ("pro:30:500:1", "'pro:30:500:1' is not name:days:stars"),
        ("9lives:30:5", "'9lives:30:5' is not name:days:stars"),
        ("pro:30:500,pro:7:100", "plan 'pro' is listed twice"),
        ("pro:0:500", "days of plan 'pro' must be a whole number from 1 to 3650"),
        ("pro:x:500", "days of plan 'pro' must be a whole number"),
        ("pro:30:-5", "price of plan 'pro' must be whole Stars from 0 (not sold) to 100000"),
        ("pro:30:1e3", "price of plan 'pro' must be whole Stars"),
    ],
)
def test_bad_plans_stop_start_up_with_one_line(value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"TRADEWIND_PLANS": value})
    message = str(caught.value)
    assert message.startswith(f"TRADEWIND_PLANS: {problem}")
    assert message.endswith("(example: TRADEWIND_PLANS=pro:30:500,trial:7:0)")
    assert "\n" not in message


def test_catalog_finds_any_case_and_lists_what_is_for_sale() -> None:
    catalog = PlanCatalog(DEFAULT_PLANS)
    assert catalog.get("PRO") == Plan("pro", 30, 500)
    assert catalog.for_sale() == [Plan("pro", 30, 500)]
    assert catalog.default == "pro"
    assert PlanCatalog([Plan("week", 7, 10)]).default == "week"
    with pytest.raises(InvalidInput, match=r"There is no plan 'gold'; plans: trial, pro\."):
        catalog.get("gold")
