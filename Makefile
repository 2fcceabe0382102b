# A newcomer's commands: `make run` and `make test`. Both create .venv and install first.
# The newest Python 3.11+ that actually runs (a pyenv shim may exist for a missing version).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Frontdesk needs Python 3.11 or newer; set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

## run: start the server on SQLite (./var) with demo data on http://127.0.0.1:8000
run: $(STAMP)
	$(BIN)/frontdesk serve --demo

## test: lint, type-check and run the whole suite (PostgreSQL too when FRONTDESK_TEST_DATABASE_URL is set)
test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -n 2

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

## bench: load benchmarks against a running server, SQLite and PostgreSQL; writes bench/RESULTS.md
bench: $(STAMP)
	$(BIN)/python -m bench
	$(BIN)/python -m bench.deliveries --results bench/RESULTS.md

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
