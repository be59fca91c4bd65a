# The two commands: `make run` (set up and run the whole stack) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test lint format bench clean

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "error: Python 3.11 or newer is needed ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(PY) -m system.devserver.stack

test: $(VENV)/.installed-dev
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff; the rooms' import contracts (pyproject.toml); no product file over 400 lines.
lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	@find agents messaging sessions_app questflow system config -name '*.py' -not -path '*/migrations/*' \
		| xargs wc -l | awk '$$2 != "total" && $$1 > 400 { print "over 400 lines: " $$2 " (" $$1 ")"; bad = 1 } END { exit bad }'

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Benchmarks (bench/README.md): needs DATABASE_URL (PostgreSQL), REDIS_URL and wrk.
# `make bench BENCH_ARGS=--quick` is the short run CI makes.
bench: $(VENV)/.installed-dev
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf var/static var/test-db.sqlite3* .pytest_cache .ruff_cache
