# The README's commands. Every target installs the project from the committed lock when needed.
SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install setup dev demo test test-slow bench bench-scoring lint clean

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

$(BIN)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked
	touch $@

install: $(BIN)/.installed

setup: install
	$(BIN)/landfall setup

dev: setup
	$(BIN)/landfall dev

demo: setup
	$(BIN)/landfall demo

# pytest exits 5 when it collected nothing: that is a failure, said out loud.
define run_pytest
	$(BIN)/pytest $(1); rc=$$?; \
	if [ $$rc = 5 ]; then echo "make: pytest collected no tests - failing"; fi; exit $$rc
endef

test: setup
	$(call run_pytest,--durations=15)

test-slow: setup
	$(call run_pytest,-m slow)

bench: setup
	$(BIN)/python -m bench

bench-scoring: setup
	$(BIN)/python -m bench scoring

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf .local transforms/target transforms/logs
