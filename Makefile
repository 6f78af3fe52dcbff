# The README's commands. Every target installs the project from the committed lock when needed.
SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install stand-in setup dev demo demo-prod snapshots test test-slow test-burst test-browser bench bench-definitions bench-burst lint clean test-location dbt-compile bench-scoring bench-scale

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

$(BIN)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked
	touch $@

install: $(BIN)/.installed

# The Snowflake stand-in (fakesnow's server) in its own venv: it needs duckdb >= 2, the platform
# pins duckdb 1.5.5. A separate server process, like moto.
STAND_IN := .venv-fakesnow
$(STAND_IN)/.installed: infra/fakesnow/pyproject.toml infra/fakesnow/uv.lock | $(UV)
	cd infra/fakesnow && UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(STAND_IN) $(abspath $(UV)) sync --locked --quiet
	touch $@

stand-in: $(STAND_IN)/.installed

setup: install
	$(BIN)/landfall setup

dev: setup
	$(BIN)/landfall dev

demo: setup
	$(BIN)/landfall demo

# The same cascade with LANDFALL_ENV=prod on this machine (docs/production.md): moto's S3, the
# Snowflake stand-in (fakesnow's server) as the account, infra/dagster.prod.yaml on the local
# PostgreSQL (database LANDFALL_DEMO_PG_DB, default landfall_demo_prod, recreated each time).
demo-prod: setup stand-in
	$(BIN)/python -m devstack.prod_like

# The inventory of each code location (tests/snapshots/<location>.txt), rewritten from the built
# Definitions; `make test` fails while it differs.
snapshots: setup
	$(BIN)/pytest -q tests/test_inventory.py --snapshot-update

# pytest exits 5 when it collected nothing: that is a failure, said out loud.
define run_pytest
	$(BIN)/pytest $(1); rc=$$?; \
	if [ $$rc = 5 ]; then echo "make: pytest collected no tests - failing"; fi; exit $$rc
endef

test: setup stand-in
	$(call run_pytest,-n 2 --dist loadfile --durations=15)

test-slow: setup stand-in
	$(call run_pytest,-m slow)

# the burst and fault suite on the production instance configuration (needs the local Postgres)
test-burst: setup
	$(call run_pytest,-m "slow or not slow" tests/ops/test_burst_faults.py --durations=5 -s)

# the UI in Debian's Chromium (installed from the Debian registry when absent and possible)
test-browser: setup
	@test -x /usr/bin/chromium || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
		&& apt-get install -y chromium) || echo "make: chromium unavailable; the test will skip"
	$(call run_pytest,-m browser tests/test_browser_ui.py -s)

bench: setup
	$(BIN)/python -m bench

bench-definitions: setup
	$(BIN)/python -m bench definitions

bench-scoring: setup
	$(BIN)/python -m bench scoring

# a zone at 1,000 and at 1,000,000 objects (needs PostgreSQL at 127.0.0.1:5432; ~10 min)
bench-scale: setup
	$(BIN)/python -m bench scale --scale-keep 1000

# 1,000 files through the whole cascade vs the naive mode (~10 min on 2 cores)
bench-burst: setup
	$(BIN)/python -m bench burst

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# --- CI per code location (.github/workflows/ci.yml calls these) ---------------------------
# `make test-location LOCATION=ml`: a venv from that location's dependency group alone (plus the
# local S3 stand-in and the test tools) from the committed lock; its definitions validated; its
# tests run in that venv.
LOCATIONS := ingestion transformation ml
LOCATION_TESTS_ingestion := tests/landing tests/sensors
LOCATION_TESTS_transformation := tests/transforms
LOCATION_TESTS_ml := tests/ml
LOCATION_VENV = .venv-$(LOCATION)
DBT_PARSE_ENV := SNOWFLAKE_ACCOUNT=parse SNOWFLAKE_USER=parse SNOWFLAKE_PASSWORD=parse \
	SNOWFLAKE_ROLE=parse SNOWFLAKE_WAREHOUSE=parse SNOWFLAKE_DATABASE=parse SNOWFLAKE_SCHEMA=parse

test-location: | $(UV)
	@case " $(LOCATIONS) " in *" $(LOCATION) "*) ;; \
	  *) echo "make: LOCATION must be one of: $(LOCATIONS)"; exit 2;; esac
	UV_PROJECT_ENVIRONMENT=$(LOCATION_VENV) $(UV) sync --locked --no-default-groups \
		--group $(LOCATION) --group local --group dev
	@if [ "$(LOCATION)" = transformation ]; then \
		LANDFALL_WAREHOUSE_PATH=/dev/null $(LOCATION_VENV)/bin/dbt parse --quiet \
			--project-dir transforms --profiles-dir transforms --target local; fi
	export DAGSTER_HOME=$$(mktemp -d) && \
		$(LOCATION_VENV)/bin/dagster definitions validate -m orchestration.$(LOCATION)
	$(LOCATION_VENV)/bin/pytest $(LOCATION_TESTS_$(LOCATION)); rc=$$?; \
	if [ $$rc = 5 ]; then echo "make: pytest collected no tests - failing"; fi; exit $$rc

# The dbt project compiled for DuckDB (a scratch warehouse file) and parsed for Snowflake (its
# compile needs a live connection; parse checks everything else offline), each into its own
# target folder so the orchestration's manifest is left alone.
dbt-compile: install
	scratch=$$(mktemp -d) && LANDFALL_WAREHOUSE_PATH=$$scratch/compile.duckdb $(BIN)/dbt compile \
		--quiet --project-dir transforms --profiles-dir transforms --target local \
		--target-path target/compile-local
	$(DBT_PARSE_ENV) $(BIN)/dbt parse --quiet --no-partial-parse --project-dir transforms \
		--profiles-dir transforms --target prod --target-path target/compile-prod

clean:
	rm -rf .local transforms/target transforms/logs .venv-ingestion .venv-transformation .venv-ml .venv-fakesnow
