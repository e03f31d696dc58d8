# kpi-pulse: `make help` lists the entry points. Everything runs in ./.venv, made on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
OPS_TOOLS := prometheus promtool prometheus-alertmanager amtool
BROWSER_TOOLS := chromium chromedriver

.PHONY: help setup ops-tools browser-tools screenshots schema-tools lock kafka-tools test-apache test-fault demo demo-incidents test test-unit test-integration lint format generate check-generated bench bench-peers hostile soak evaluate evaluate-corpus clean

help: ## list the entry points (start with `make demo`, then `make test`)
	@echo "kpi-pulse: live finance & operations KPIs from Kafka"
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,report]"
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install kpi-pulse with its test tools and `pulse report`

ops-tools: ## install Prometheus + Alertmanager (Debian packages; the rule and alert tests run them)
	@missing=""; for tool in $(OPS_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing prometheus and prometheus-alertmanager (missing:$$missing)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    prometheus prometheus-alertmanager >/dev/null; \
	fi

browser-tools: ## install headless Chromium + chromedriver (Debian packages; the page's browser test drives them)
	@missing=""; for tool in $(BROWSER_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing chromium and chromium-driver (missing:$$missing)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    chromium chromium-driver >/dev/null; \
	fi

AJV_DIR := deploy/ajv
AJV     := $(AJV_DIR)/node_modules/.bin/ajv

$(AJV): $(AJV_DIR)/package.json $(AJV_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js 18+) is needed for the ajv schema tests"; exit 1; }
	cd $(AJV_DIR) && npm ci --no-audit --no-fund --silent
	touch $(AJV)

schema-tools: $(AJV) ## ajv-cli (npm, locked in deploy/ajv/) for the JSON Schema tests, into deploy/ajv/node_modules

lock: $(STAMP) ## pin the image's runtime dependencies with hashes: deploy/docker/requirements.lock
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --all-build-deps --strip-extras \
	  --no-emit-index-url --no-emit-find-links --output-file deploy/docker/requirements.lock pyproject.toml

kafka-tools: $(STAMP) ## Apache Kafka for tests: mvn (Debian package) if missing, then the broker jars, cached
	@command -v java >/dev/null || { echo "java 17+ is needed for the Apache Kafka tests"; exit 1; }
	@if ! command -v mvn >/dev/null; then \
	  echo "installing maven (fetches the Apache Kafka jars once)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends maven >/dev/null; \
	fi
	$(BIN)/python deploy/kafka/kafka_cluster.py fetch

demo: $(STAMP) ## run the demo: embedded broker + worker + simulator (Ctrl-C stops)
	$(BIN)/pulse demo $(ARGS)

demo-incidents: $(STAMP) ## the demo with labelled incidents: watch alerts open and resolve
	$(BIN)/pulse demo --incidents $(ARGS)

test: $(STAMP) ops-tools browser-tools schema-tools kafka-tools lint check-generated ## lint, types, generated files; every test, the integration suite on both brokers
	$(BIN)/pytest -ra --durations=20 -m "not fault"
	$(MAKE) --no-print-directory test-apache test-fault

test-apache: $(STAMP) browser-tools kafka-tools ## the integration suite again, on Apache Kafka (one node, started by the tests)
	KPI_PULSE_TEST_BROKER=apache $(BIN)/pytest -ra tests/integration -m "not apache_kafka and not fault and not any_broker"

test-fault: $(STAMP) kafka-tools ## fault tests on Apache Kafka: kill -9, rebalances, broker failures; exact KPIs
	$(BIN)/pytest -ra -m fault

test-unit: $(STAMP) ops-tools schema-tools ## unit tests only (no broker, seconds; promtool for the rule tests)
	$(BIN)/pytest -ra tests/unit

test-integration: $(STAMP) ops-tools browser-tools ## integration tests on a real broker (embedded unless PULSE_KAFKA_BOOTSTRAP)
	$(BIN)/pytest -ra tests/integration

screenshots: $(STAMP) browser-tools ## run the page's browser test and keep its screenshot as docs/page.png (the README's)
	KPI_PULSE_SCREENSHOTS=1 $(BIN)/pytest -q tests/integration/test_page_browser.py

lint: $(STAMP) ## ruff lint + format check, mypy strict on streams/ and schemas/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP) ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

generate: $(STAMP) ## regenerate schemas, Prometheus rules, Alertmanager config, Grafana boards
	$(BIN)/pulse generate

check-generated: $(STAMP) ## fail when generated files drift from their source
	$(BIN)/pulse generate --check

bench: $(STAMP) ## pipeline throughput vs a plain-consumer ceiling (prints `ratio:`; ARGS="--replay 100000": changelog replay)
	$(BIN)/pulse bench $(ARGS)

PEER_VENVS := .venv-peers
PEERS      := bytewax quixstreams

$(PEER_VENVS)/%/.installed-stamp: deploy/bench-peers/%.txt
	$(PYTHON) -m venv $(PEER_VENVS)/$*
	$(PEER_VENVS)/$*/bin/pip install --quiet --upgrade pip
	$(PEER_VENVS)/$*/bin/pip install --quiet -r $<
	touch $@

bench-peers: $(STAMP) $(PEERS:%=$(PEER_VENVS)/%/.installed-stamp) ## revenue + orders at 1m: kpi-pulse vs Bytewax and Quix Streams (own venvs in .venv-peers), ratios to the ceiling
	$(BIN)/pulse bench --peers $(PEER_VENVS) $(ARGS)

hostile: $(STAMP) ## 100,000 hostile and valid messages at a worker: each counted or dead-lettered, none lost (ARGS="--messages N")
	$(BIN)/pulse hostile $(ARGS)

soak: $(STAMP) ## 30 min at 500 events/s on a real worker: RSS flat within 10% after warm-up, lag back to 0 (ARGS="--duration 180")
	$(BIN)/pulse soak $(ARGS)

evaluate: $(STAMP) ## judge the anomaly detectors on 3 simulated weeks (~3 min)
	$(BIN)/pulse evaluate $(ARGS)

evaluate-corpus: $(STAMP) ## judge them on a labelled corpus of real-world-like series (CPU, latency, traffic, ...; ~10 s, ARGS="--verbose")
	$(BIN)/python -m streams.tools.corpus build/corpus
	$(BIN)/pulse evaluate --series build/corpus --labels build/corpus/labels.csv $(ARGS)

clean: ## remove .venv, the peers' venvs and caches
	rm -rf $(VENV) $(PEER_VENVS) .mypy_cache .ruff_cache .pytest_cache .hypothesis
