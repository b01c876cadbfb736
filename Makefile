# Tradewind: `make run` starts the bot, `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test check bench clean lock

run: $(STAMP)
	@$(BIN)/tradewind run

test: $(STAMP)
	@$(BIN)/pytest

check: $(STAMP)
	@$(BIN)/python scripts/check.py

# Every benchmark in quick mode, one table (FULL=1: the full sizes; BENCH_ARGS=--write-docs
# records the table in docs/PERFORMANCE.md).
bench: $(STAMP)
	@$(BIN)/python -m scripts.bench_all $(if $(FULL),--full) $(BENCH_ARGS)

# Reinstall only when the dependency list changes; a present, current venv costs nothing.
# constraints.txt holds the versions the tests passed with, so every machine (and CI) gets them.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt -e '.[dev]' 1>&2
	@touch $(STAMP)

# Resolve pyproject.toml afresh (newest allowed versions) and record the result.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	{ sed -n '1,2p' constraints.txt; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable; } > constraints.new
	mv constraints.new constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
