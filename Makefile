# The README's two commands: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install run test test-fast lint bench-extract bench-dedup

$(VENV)/bin/wire: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

install: $(VENV)/bin/wire

run: install
	$(VENV)/bin/wire run

test: install
	$(PY) -m pytest -q -p no:cacheprovider

# the pure unit tests (tests/unit): no Redis, no HTTP, no processes
test-fast: install
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

lint: install
	$(VENV)/bin/ruff check worker tests bench
	$(VENV)/bin/mypy worker
	$(VENV)/bin/hadolint Dockerfile

bench-extract: install
	$(PY) bench/extract.py

bench-dedup: install
	$(PY) bench/dedup.py
