# One command each. Every target sets the machine up first (Java 17, .venv, pinned packages).
VENV ?= .venv
BIN := $(VENV)/bin
LAKE ?= .local-lake
PYTEST_ARGS ?=

.PHONY: help setup demo demo-fresh test lint bench clean

help:
	@echo "make demo       set up, then run the local ingest demo (emulated AWS, generated data)"
	@echo "make demo-fresh the same from an empty lake"
	@echo "make test       set up, then run the test suite"
	@echo "make lint       ruff and mypy"
	@echo "make bench      the 1M / 5M row benchmark: job vs plain Spark vs DuckDB"
	@echo "make clean      remove the local lake and benchmark files"

setup:
	@./scripts/setup.sh

demo: setup
	$(BIN)/python -m lake_ingest.local.demo --lake-dir $(LAKE)

demo-fresh: setup
	$(BIN)/python -m lake_ingest.local.demo --lake-dir $(LAKE) --fresh

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check glue_jobs tests benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m benchmarks.bench_ingest

clean:
	rm -rf $(LAKE) .bench
