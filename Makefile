# Everything a fresh machine needs, from Python 3.11+ alone: `make run`, `make test`.
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test lint typecheck unit bench install clean

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --inexact --all-groups
	@touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/conveyor serve --demo --migrate

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: install
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest

bench: install
	$(VENV)/bin/python -m benchmarks.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache conveyor.db*
