# Two commands for a newcomer: `make demo` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
UV := .uv/bin/uv
OL := $(VENV)/bin/oneloop
DEMO_DIR ?= var/demo
DEMO_CUSTOMERS ?= 20000
DEMO_SEED ?= 7
# Test processes (pytest-xdist); each gets its own PostgreSQL cluster.
TEST_WORKERS ?= 2
# Use the machine's Python; never download one.
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install lint format test demo serve clean help

help:
	@echo "make demo     install, generate and load the demo group, serve http://127.0.0.1:8000"
	@echo "make test     install, lint, run the whole test suite (PostgreSQL too when installed)"
	@echo "make lint     ruff check + format check;  make format  fix formatting"

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# pytest exits 5 when it collects no test: that is a failure here, never green.
test: lint
	@url="$$(scripts/test-postgres.sh $(TEST_WORKERS))"; \
	if [ -n "$$url" ]; then echo "PostgreSQL suite: on"; else echo "PostgreSQL suite: off (server not installed)"; fi; \
	ONELOOP_TEST_POSTGRES_URL="$$url" $(VENV)/bin/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

demo: install
	@if [ ! -f "$(DEMO_DIR)/manifest.json" ]; then \
		$(OL) demo generate --out "$(DEMO_DIR)" --customers $(DEMO_CUSTOMERS) --seed $(DEMO_SEED); \
	fi
	$(OL) db upgrade
	$(OL) demo load --dir "$(DEMO_DIR)"
	$(OL) serve

serve: install
	$(OL) db upgrade
	$(OL) serve

clean:
	rm -rf $(VENV) .uv var .pytest_cache .ruff_cache
