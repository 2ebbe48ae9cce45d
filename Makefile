# Two commands do all the set-up: `make run` and `make test`. Each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := contracts/node_modules/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install run test test-fast bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

# Contract tooling (solcjs, anvil) comes from npm, pinned by the lock file.
$(NODE_STAMP): contracts/package.json $(wildcard contracts/package-lock.json)
	@if [ -f contracts/package.json ]; then npm ci --prefix contracts --no-audit --no-fund --loglevel=error && touch $(NODE_STAMP); fi

install: $(STAMP) $(if $(wildcard contracts/package.json),$(NODE_STAMP))

run: install
	$(PY) -m assistant.cli serve

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

bench: install
	$(PY) bench/retrieval.py

lint: install
	$(VENV)/bin/ruff check assistant retrieval payouts tests bench

clean:
	rm -rf $(VENV) contracts/node_modules .pytest_cache
