# The two commands of the README. Each makes its own virtual environment in .venv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: run test lint bench clean

run: $(VENV)/.installed
	$(VENV)/bin/opsloop sandbox

test: $(VENV)/.installed-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

bench: $(VENV)/.installed-test
	$(PY) -m bench.ack_latency

$(VENV)/.python-ok:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "opsloop needs Python 3.11 or newer, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@touch $@

$(VENV)/.installed: $(VENV)/.python-ok pyproject.toml
	$(PY) -m pip install -q -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.python-ok pyproject.toml
	$(PY) -m pip install -q -e '.[test]'
	@touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) .opsloop .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
