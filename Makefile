# Two commands do all set-up on a fresh machine (see README):
#   make demo   install, render the embedded default data into data/ if absent, check params.yaml, `dvc repro`
#   make test   install, then lint (ruff) and run the whole test suite (what CI runs)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python

# Telemetry off and tool homes inside the repo's ignored folders, for every command run from here.
export BENTOML_DO_NOT_TRACK := True
export BENTOML_HOME := $(CURDIR)/.bentoml
export DVC_NO_ANALYTICS := 1
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export GX_ANALYTICS_ENABLED := false
# dvc.yaml's stage commands call `python`: the virtual environment's
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install demo paper test lint bench bench-service clean

# The stamp is rebuilt when pyproject.toml changes; torch==2.13.0 resolves to the CPU wheel here.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	@test -d data || { echo "data/ is absent: rendering the embedded default (simgan simulate --out data)"; \
	                   simgan simulate --out data; }
	simgan check --profile paper
	dvc repro
	@echo; echo "Results: artifacts/reports/report.html (and .md); every metric: dvc metrics show"; echo
	@sed -n '/^### Gaze estimation/,/^### Annotation/{/^### Annotation/!p};/^### Hand pose estimation/,/^### Annotation/{/^### Annotation/!p}' \
	     artifacts/reports/report.md

# the paper's settings (profiles/paper.yaml, a delta over params.yaml) as a DVC experiment, for a GPU
paper: install
	simgan profile paper --run

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# pytest workers: one per core plus one (the integration tests wait on servers and subprocesses: on 2 cores a third
# worker took the suite from 477 s to 443 s), each taking whole files (module fixtures such as a tiny DVC repo stay
# in one worker); each worker computes on one thread (tests/conftest.py)
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
test: lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

bench: install
	$(PY) benchmarks/refiner.py

bench-service: install
	$(PY) benchmarks/service.py

clean:
	rm -rf $(VENV) artifacts .prefect .bentoml
