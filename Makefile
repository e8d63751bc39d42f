# One entry point for people and CI: `make test` runs exactly what CI runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= examples/pop3watch.yaml
DATA   ?= data
# A second interpreter for the check's own tests: Python 3.13 changed stdlib defaults (ssl)
# that decide verdicts, and Debian 13 ships it. Used where present, skipped otherwise.
COMPAT_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3) $(shell command -v python3.13))
COMPAT_VENV   := .venv-compat

.PHONY: run test check lint typecheck pytest pytest-compat test-debian13 deps-debian bench clean

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

## The protocol core, the check and the CLI again on COMPAT_PYTHON.
pytest-compat: $(STAMP)
	@if [ -z "$(COMPAT_PYTHON)" ]; then \
		echo "pytest-compat: no Python 3.13 on this machine, skipped"; \
	else \
		set -e; \
		[ -x $(COMPAT_VENV)/bin/python ] || $(COMPAT_PYTHON) -m venv $(COMPAT_VENV); \
		$(COMPAT_VENV)/bin/pip install --quiet -e '.[dev]'; \
		$(COMPAT_VENV)/bin/python --version; \
		$(COMPAT_VENV)/bin/pytest -p no:cacheprovider tests/pop3 tests/probe tests/cli; \
	fi

check: lint typecheck pytest pytest-compat

## The whole suite inside a Debian 13 root (Python 3.13, OpenSSL 3.5, Dovecot 2.4), on
## this machine's kernel and PostgreSQL. Not part of `make test`: building the root takes
## minutes and the Debian mirror (scripts/debian-root.sh).
DEBIAN13_ROOT ?= /srv/pop3watch-debian13
test-debian13:
	bash scripts/debian-root.sh $(DEBIAN13_ROOT)
	bash scripts/ensure-postgres.sh
	chroot $(DEBIAN13_ROOT) sh -c 'cd $(CURDIR) && /opt/pop3watch-venv/bin/pytest -p no:cacheprovider'; \
		status=$$?; bash scripts/debian-root.sh --umount $(DEBIAN13_ROOT); exit $$status

## Set up everything the tests need on a fresh Debian machine, then run them.
test: deps-debian $(STAMP) check

bench: $(STAMP) deps-debian
	$(BIN)/python bench/check_throughput.py
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) $(COMPAT_VENV) .mypy_cache .ruff_cache .pytest_cache
