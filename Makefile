# Two entry points on a fresh machine: `make run` (the main job) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/sor run $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not kafka and not ray" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/allocator.py
	$(PY) bench/cont_kukanov.py
	$(PY) bench/router.py
	$(PY) bench/stream_throughput.py
	$(PY) bench/sweep_throughput.py

lint: $(STAMP)
	$(VENV)/bin/ruff check sor stream sweep tests bench
	$(VENV)/bin/ruff format --check sor stream sweep tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache runs results.json results_trials.csv \
		results_*.png results_report.html
