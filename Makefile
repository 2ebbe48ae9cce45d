# Two commands do all the set-up: `make run` and `make test`. Each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := contracts/node_modules/.installed-stamp
WEB_STAMP := web/node_modules/.installed-stamp
CHROMIUM := /usr/bin/chromium
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

# The web pages' libraries (marked, DOMPurify, ethers, uPlot) and /docs' Swagger UI (swagger-ui-dist): their dist files are served as they are, no build.
$(WEB_STAMP): web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund --loglevel=error && touch $(WEB_STAMP)

# The browser of the end-to-end tests (Debian's chromium, driven by Playwright; never
# `playwright install`). Runs only when it is missing.
$(CHROMIUM):
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium \
	  || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium)

install: $(STAMP) $(if $(wildcard contracts/package.json),$(NODE_STAMP)) $(WEB_STAMP)

run: install
	$(PY) -m assistant.cli run

test: install $(CHROMIUM)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install $(CHROMIUM)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

bench: install
	$(PY) bench/retrieval_figures.py

lint: install
	$(VENV)/bin/ruff check assistant retrieval payouts tests bench

clean:
	rm -rf $(VENV) contracts/node_modules web/node_modules .pytest_cache
