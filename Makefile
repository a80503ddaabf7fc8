# Everyday entry points. Each target installs what it needs through uv from the lock file, so a
# fresh clone needs only python3 (3.11+) and make.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# uv from PATH when present; otherwise the copy that ensure-uv installs with pip --user.
UV := $(if $(shell command -v uv 2>/dev/null),uv,python3 -m uv)
# Overridable so a target can be tried against an existing environment without syncing it.
SYNC_CMD ?= $(UV) sync --frozen
RUN_CMD ?= $(UV) run --frozen
PYTEST_ARGS ?=

.PHONY: help ensure-uv sync run test lint bench

help:
	@echo "make run    start the platform (ghl serve) with data in \$$GHL_DATA_DIR (default ./.ghl)"
	@echo "make test   run the tests with coverage (80% overall, 90% for ghl_core); PYTEST_ARGS=... passes through"
	@echo "make lint   ruff check, ruff format --check, mypy (sources and tests), import-linter, file and class sizes"
	@echo "make bench  run every bench/*.py script"

ensure-uv:
	@if [ "$(UV)" != "uv" ] && ! python3 -m uv --version >/dev/null 2>&1; then \
		echo "uv not found: installing it with pip --user"; \
		python3 -m pip install --user --quiet uv \
			|| python3 -m pip install --user --quiet --break-system-packages uv; \
	fi

sync: ensure-uv
	$(SYNC_CMD)

run: sync
	$(RUN_CMD) ghl serve

test: sync
	$(RUN_CMD) pytest --cov --cov-report=term --cov-fail-under=80 $(PYTEST_ARGS)
	$(RUN_CMD) coverage report --include='*/ghl_core/*' --fail-under=90

lint: sync
	$(RUN_CMD) ruff check .
	$(RUN_CMD) ruff format --check .
	$(RUN_CMD) mypy packages/*/src
	@# tests/ has no __init__.py (pytest imports each directory's helpers, e.g. clitools, fakes, by bare
	@# name) and four directories have a conftest.py, which one mypy run would take for one module: so one
	@# run per directory, with tests/ (shared helpers) and that directory on the path.
	MYPYPATH=tests $(RUN_CMD) mypy tests/*.py
	for dir in tests/*/; do MYPYPATH="tests:$$dir" $(RUN_CMD) mypy "$$dir"; done
	$(RUN_CMD) lint-imports
	$(RUN_CMD) python .ci/sizes.py

bench: sync
	@shopt -s nullglob; scripts=(bench/*.py); \
	if [ $${#scripts[@]} -eq 0 ]; then echo "no bench scripts in bench/"; exit 0; fi; \
	for script in "$${scripts[@]}"; do \
		echo "==== $$script"; \
		$(RUN_CMD) python "$$script"; \
	done
