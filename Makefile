# Two commands set everything up on a fresh machine: `make demo` and `make test`.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install demo test test-tools lint format bench chaos clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/crmagento demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

# chromium, wrk and promtool: installed with apt-get when running as root, else named with the command to run.
test-tools:
	bash scripts/ensure-test-tools

test: test-tools lint
	$(BIN)/pytest $(PYTEST_ARGS)

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python bench/suite.py $(ARGS)

# Fault tests at full size (CI runs the same scenarios small, inside `make test`).
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
