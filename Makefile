# Tradewind: `make run` starts the bot, `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test check bench clean

run: $(STAMP)
	@$(BIN)/tradewind run

test: $(STAMP)
	@$(BIN)/pytest

check: $(STAMP)
	@$(BIN)/python scripts/check.py

# Reinstall only when the dependency list changes; a present, current venv costs nothing.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' 1>&2
	@touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
