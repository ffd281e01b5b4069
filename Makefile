# mews: the commands a developer runs more than once.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install run test test-unit test-integration lint lock kafka-up kafka-down bench backtest backtest-2023 refdata clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## Install everything the system and its tests need (Python deps, Kafka, PostgreSQL, Prometheus, Chromium, checkers)
	bash deploy/local/kafka.sh fetch
	bash deploy/tools/install-system.sh
	PYTHON=$(BIN)/python bash deploy/tools/install-tools.sh

run: $(STAMP) ## Start Kafka, create topics, start all services and replay the demo feed
	bash deploy/local/kafka.sh fetch
	$(BIN)/python -m deploy.local.run

test: install ## Run every test, unit and integration, against a real broker
	$(BIN)/python -m pytest -q tests

test-unit: $(STAMP) ## Run the tests that need no broker (only the virtualenv)
	$(BIN)/python -m pytest -q tests/unit

test-integration: install ## Run the tests on real Kafka, databases, SMTP and HTTP
	$(BIN)/python -m pytest -q tests/integration tests/e2e

lint: $(STAMP) ## ruff (rules and format) and mypy over shared and services (only the virtualenv)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The published files (WGI, USGS MCS, EU CRM study), one folder per publication; see docs/methodology.md.
REFDATA_FROM ?= ../shared/data

refdata: $(STAMP) ## Rebuild the shipped reference tables from REFDATA_FROM and print the check against the EU study
	$(BIN)/mews refdata build --from $(REFDATA_FROM)
	$(BIN)/mews refdata validate

lock: ## Re-resolve requirements.lock (runtime, for the image) and requirements-dev.lock (tests) from pyproject.toml
	$(BIN)/pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -c requirements.lock -o requirements-dev.lock

# The scoring bench needs a broker (KAFKA_BOOTSTRAP_SERVERS, or it starts one); its full size is 100,000 prices.
SCORING_BENCH ?= --events 20000

bench: install ## Run the benchmarks and print their figures
	@for b in bench/*.py; do echo "== $$b"; \
		case $$b in *scoring_bench.py) args="$(SCORING_BENCH)";; *) args="";; esac; \
		$(BIN)/python $$b $$args; done

clean:
	rm -rf $(VENV) .pytest_cache

kafka-up: ## Start the local Kafka broker alone (KAFKA_PORT, default 9092)
	bash deploy/local/kafka.sh start

kafka-down: ## Stop the local Kafka broker
	bash deploy/local/kafka.sh stop

# The Pink Sheet editions in the shared data folder beside the repository: the 2026 one (prices to 2026-05, no code
# row) by default; the 2023 one is the edition tests/fixtures/scoring/expected_extract.* were made from.
PINKSHEET      ?= ../shared/data/worldbank-cmo-monthly-2026/CMO-Historical-Data-Monthly.xlsx
PINKSHEET_2023 ?= ../shared/data/worldbank-cmo-monthly/CMO-Historical-Data-Monthly.xlsx

backtest: $(STAMP) ## Replay the World Bank Pink Sheet (2026 edition) through the scoring rules; report in var/backtest.csv
	mkdir -p var
	$(BIN)/mews backtest --prices $(PINKSHEET) --format csv --out var/backtest.csv

backtest-2023: $(STAMP) ## The same on the 2023 edition (prices to 2023-05); report in var/backtest-2023.csv
	mkdir -p var
	$(BIN)/mews backtest --prices $(PINKSHEET_2023) --format csv --out var/backtest-2023.csv
