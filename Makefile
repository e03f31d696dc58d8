# kpi-pulse: `make help` lists the entry points. Everything runs in ./.venv, made on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help setup demo demo-incidents test test-unit test-integration lint format generate check-generated bench evaluate clean

help: ## list the entry points (start with `make demo`, then `make test`)
	@echo "kpi-pulse: live finance & operations KPIs from Kafka"
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install kpi-pulse with its test tools

demo: $(STAMP) ## run the demo: embedded broker + worker + simulator (Ctrl-C stops)
	$(BIN)/pulse demo $(ARGS)

demo-incidents: $(STAMP) ## the demo with labelled incidents: watch alerts open and resolve
	$(BIN)/pulse demo --incidents $(ARGS)

test: $(STAMP) lint check-generated ## lint, type-check, check generated files, run every test
	$(BIN)/pytest -ra

test-unit: $(STAMP) ## unit tests only (no broker, seconds)
	$(BIN)/pytest -ra tests/unit

test-integration: $(STAMP) ## integration tests on a real broker (embedded unless PULSE_KAFKA_BOOTSTRAP)
	$(BIN)/pytest -ra tests/integration

lint: $(STAMP) ## ruff lint + format check, mypy strict on streams/ and schemas/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP) ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

generate: $(STAMP) ## regenerate the committed JSON Schema files from the models
	$(BIN)/pulse generate

check-generated: $(STAMP) ## fail when generated files drift from their source
	$(BIN)/pulse generate --check

bench: $(STAMP) ## pipeline throughput vs a plain-consumer ceiling (prints `ratio:`)
	$(BIN)/pulse bench $(ARGS)

evaluate: $(STAMP) ## judge the anomaly detectors on 3 simulated weeks (~3 min)
	$(BIN)/pulse evaluate $(ARGS)

clean: ## remove .venv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
