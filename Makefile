# One entry point for people and CI: `make test` runs exactly what CI runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= examples/pop3watch.yaml
DATA   ?= data

.PHONY: run test check lint typecheck pytest deps-debian bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Start the service on its embedded default (SQLite in ./data, example config).
run: $(STAMP)
	$(BIN)/pop3watch run --config $(CONFIG) --data-dir $(DATA)

## Debian packages the tests talk to (real Dovecot, check_pop, blackbox_exporter).
deps-debian:
	bash scripts/install-debian-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)

typecheck: $(STAMP)
	$(BIN)/mypy --strict src/pop3watch

pytest: $(STAMP)
	bash scripts/ensure-postgres.sh
	$(BIN)/pytest

check: lint typecheck pytest

## Set up everything the tests need on a fresh Debian machine, then run them.
test: deps-debian $(STAMP) check

bench: $(STAMP) deps-debian
	$(BIN)/python bench/check_throughput.py
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
