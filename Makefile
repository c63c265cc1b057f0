# Every target sets itself up: a virtual environment in .venv with the project and its dev tools
# installed from the pinned constraints. A newcomer types `make demo` or `make test`, nothing else.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo bench test lint typecheck imports pytest clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## The main job on a fresh machine: the bridge, the sandbox Intercom and sandbox providers in
## one process, a scripted scenario of every behaviour, then an ordered-delivery load.
demo: $(STAMP)
	$(BIN)/threadline demo

bench: $(STAMP)
	$(BIN)/python bench/runtime_bench.py
	$(BIN)/python bench/ingress_bench.py
	$(BIN)/python bench/delivery_bench.py

## The whole test suite: lint, types, import contracts, then pytest (which starts its own
## throwaway PostgreSQL). FAST=1 skips the long soak and fault tests (CI always runs them).
test: $(STAMP) lint typecheck imports pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	bash tests/ensure-postgres.sh
	bash tests/ensure-tools.sh
	$(BIN)/pytest $(if $(FAST),-m 'not slow',) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
