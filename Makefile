# Two commands for a fresh Linux machine with Python 3.11:
#   make run   - create .venv, install, start everything locally (ca-service dev);
#                make run PORT=8001 for another port (or CA_BIND=HOST:PORT)
#   make test  - create .venv, install with test tools, run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test lint install clean docs

$(BIN)/ca-service: pyproject.toml
	@test -n "$(PYTHON)" || { echo "need python3.11 on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/ca-service

run: install
	$(BIN)/ca-service dev $(if $(PORT),--bind 127.0.0.1:$(PORT))

test: install
	$(BIN)/pytest -n 2 --dist loadgroup -q --durations=30 $(PYTEST_ARGS)

lint: install
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy ca_service config workers bench ca_enroll

docs: install  # the configuration table of docs/configuration.md, from config/settings.py
	$(BIN)/python -m config.settings_doc

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
