# Wayline developer tasks. Every target bootstraps .venv first (idempotent).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python

.DEFAULT_GOAL := check
.PHONY: venv dev test lint check bench

# Created once; delete .venv to start over.
$(PY):
	$(PYTHON) -m venv $(VENV)

# Always re-run: a quiet no-op when everything is already satisfied.
venv: $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'

# Local dev server with the quick-start app (http://127.0.0.1:8288).
dev: venv
	$(BIN)/wayline dev --app examples.quickstart.app:app

# Unit, contract and compat suites; xdist with 2 workers (each compat test
# starts its own app + `wayline dev` on free ports with a tmp db).
test: venv
	$(BIN)/pytest -n 2

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src tests examples bench handlers

check: lint test

# Runs every bench/*.py script (not _private ones); they print their numbers.
bench: venv
	@found=0; \
	for script in bench/[!_]*.py; do \
		[ -f "$$script" ] || continue; \
		found=1; \
		echo "==> $$script"; \
		$(PY) "$$script" || exit $$?; \
	done; \
	[ "$$found" = 1 ] || echo "no benchmarks in bench/"

# `sam build` runs the build-<Function> targets defined here (BuildMethod: makefile).
include infra/lambda.mk
