# mews: the commands a developer runs more than once.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install run test test-unit test-integration lint lock kafka-up kafka-down bench backtest clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## Install the locked Python dependencies into .venv
	bash deploy/local/kafka.sh fetch

run: install ## Start Kafka, create topics, start all services and replay the demo feed
	$(BIN)/python -m deploy.local.run

test: install ## Run every test, unit and integration, against a real broker
	$(BIN)/python -m pytest -q tests

test-unit: install ## Run the tests that need no broker
	$(BIN)/python -m pytest -q tests/unit

test-integration: install ## Run the tests on real Kafka, databases, SMTP and HTTP
	$(BIN)/python -m pytest -q tests/integration tests/e2e

lint: install ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy shared services/scoring/indicators services/scoring/rules.py

lock: ## Re-resolve requirements.lock from pyproject.toml
	$(PYTHON) -m pip install -q uv
	$(PYTHON) -m uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

bench: install ## Run the benchmarks and print their figures
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) .pytest_cache
