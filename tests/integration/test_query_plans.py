"""Every hot query a repository exposes is served by an index: no full table scans."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import db.repositories as repositories
from db.repositories import HotQuery
from db.store import Store


def _hot_queries() -> list[HotQuery]:
    found: list[HotQuery] = []
    for module_info in pkgutil.iter_modules(repositories.__path__):
        module = importlib.import_module(f"db.repositories.{module_info.name}")
        found.extend(getattr(module, "HOT_QUERIES", ()))
    return found


HOT = _hot_queries()


def test_repositories_declare_hot_queries() -> None:
    assert len(HOT) >= 10
    assert len({q.name for q in HOT}) == len(HOT), "hot query names must be unique"


@pytest.mark.parametrize("query", HOT, ids=[q.name for q in HOT])
async def test_hot_query_uses_an_index(store: Store, query: HotQuery) -> None:
    rows = await store.fetchall("t.explain", f"EXPLAIN QUERY PLAN {query.sql}", query.params)
    plan = [row["detail"] for row in rows]
    assert not [step for step in plan if _is_full_scan(step, query.sql)], (
        f"{query.name} scans a table: {plan}"
    )
    assert query.sorts or not [step for step in plan if "TEMP B-TREE" in step], (
        f"{query.name} sorts without an index: {plan}"
    )


def _is_full_scan(step: str, sql: str) -> bool:
    """A SCAN reads the whole table, unless it walks an index in order and stops at LIMIT.

    Scans of a query's own subquery results or of a parameter list (json_each) read no table.
    """
    if not step.startswith("SCAN ") or "CONSTANT ROW" in step:
        return False
    if step.startswith("SCAN (subquery-") or "VIRTUAL TABLE" in step:
        return False
    walks_index_in_order = "USING INDEX" in step or "USING COVERING INDEX" in step
    return not (walks_index_in_order and " LIMIT " in f" {sql} ")
