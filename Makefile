# Restoration Lab: `make demo` trains and evaluates a model end to end; `make test` runs the test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: setup demo lint test test-fast lab clean-runs

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name restoration-lab --display-name "Python (restoration-lab)"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/lab run train --spec demo --log-output
	$(VENV)/bin/lab ledger --last 10

lint: setup
	$(VENV)/bin/ruff check lab tests

test: lint
	$(VENV)/bin/pytest -q

test-fast: lint
	$(VENV)/bin/pytest -q -m "not slow"

lab: setup
	$(VENV)/bin/lab jupyter
