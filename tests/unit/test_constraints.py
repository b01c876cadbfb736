"""The environment runs the versions recorded in constraints.txt, ccxt pinned exactly."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_every_installed_dependency_matches_its_constraint() -> None:
    pins = _pins()
    assert "tradewind" not in pins  # the project itself is installed from the worktree
    installed = {
        re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version
        for d in metadata.distributions()
    }
    drift = {name: (want, installed.get(name)) for name, want in pins.items()}
    assert {n: v for n, v in drift.items() if v[0] != v[1]} == {}


def test_ccxt_is_pinned_to_the_constrained_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (ccxt,) = [d for d in project["dependencies"] if d.startswith("ccxt")]
    assert ccxt == f"ccxt=={_pins()['ccxt']}"
