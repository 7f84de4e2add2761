# The two commands of the README. Each makes its own virtual environment in .venv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# pytest-xdist workers for `make test`. The tests mostly wait on servers, processes and timers,
# so more workers than cores pays off (4 on two cores: 13 min serially, about 4.5 min so).
# Tests marked `serial` measure Slack's 429 windows to the tenth of a second and flake on a
# loaded machine: they run afterwards, alone.
TEST_WORKERS ?= 4

.PHONY: run test lint bench clean image

run: $(VENV)/.installed
	$(VENV)/bin/opsloop sandbox

test: $(VENV)/.installed-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not serial"
	$(PY) -m pytest -m serial

# The container image (deploy/README.md); BASE picks another base image.
image:
	docker build $(if $(BASE),--build-arg BASE=$(BASE)) -t opsloop:local .

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
