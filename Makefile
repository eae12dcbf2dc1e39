# One command each. Every target sets the machine up first (Java 17, .venv, pinned packages).
VENV ?= .venv
BIN := $(VENV)/bin
LAKE ?= .local-lake
PYTEST_ARGS ?=
# Spark runs on the Java 17 that setup found (the default java may be another version).
WITH_JAVA = JAVA_HOME="$$(cat $(VENV)/java-home)"
PY = $(WITH_JAVA) $(BIN)/python

.PHONY: help setup demo demo-fresh demo-sfn test lint bench diagrams lab notebooks clean

help:
	@echo "make demo       set up, then run the local ingest demo (emulated AWS, generated data)"
	@echo "make demo-fresh the same from an empty lake"
	@echo "make demo-sfn   the demo through the Step Functions definition (moto runs it, Spark does the Glue runs)"
	@echo "make test       set up, then run the test suite"
	@echo "make lint       ruff, mypy and terraform fmt -check"
	@echo "make bench      the 1M / 5M row benchmark: job vs plain Spark vs DuckDB"
	@echo "make diagrams   render the architecture diagrams into architecture/ (Graphviz)"
	@echo "make lab        open JupyterLab on notebooks/"
	@echo "make notebooks  execute every notebook in a fresh kernel (executed copies in build/notebooks/)"
	@echo "make clean      remove the local lake, benchmark files and executed notebooks"

setup:
	@./scripts/setup.sh

demo: setup
	$(PY) -m lake_ingest.local.demo --lake-dir $(LAKE)

demo-fresh: setup
	$(PY) -m lake_ingest.local.demo --lake-dir $(LAKE) --fresh

demo-sfn: setup
	$(PY) -m lake_ingest.local.demo --lake-dir $(LAKE) --step-functions

test: setup
	$(PY) -m pytest -rs $(PYTEST_ARGS)  # -rs: every skipped test is listed with its reason

lint: setup
	$(BIN)/ruff check glue_jobs tests benchmarks notebooks architecture
	$(BIN)/mypy
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive terraform; \
	else echo "terraform fmt: skipped (the Terraform CLI is not installed)"; fi

bench: setup
	$(PY) -m benchmarks.bench_ingest

diagrams: setup
	$(PY) architecture/render.py

lab: setup
	$(WITH_JAVA) $(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

notebooks: setup
	NOTEBOOKS_OUT=build/notebooks $(PY) -m pytest tests/test_notebooks.py -q -s $(PYTEST_ARGS)

clean:
	rm -rf $(LAKE) .bench build
