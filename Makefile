# The two commands: `make run` (set up, then serve the dashboard with demo data)
# and `make test` (set up, then run the whole test suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ARGS   ?=

.PHONY: run test setup setup-test assets collect bench clean

run: setup assets
	$(PY) app.py serve $(ARGS)

test: setup-test assets
	$(PY) -m pytest $(ARGS)

setup: $(VENV)/.installed
setup-test: $(VENV)/.installed-test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# Third-party CSS, fonts and map geometry come from the npm registry at setup; none is committed.
assets: $(VENV)/.installed
	$(PY) tools/fetch_assets.py

collect: setup
	$(PY) app.py collect $(ARGS)

bench: setup-test assets
	$(PY) bench/bench_ingest.py
	$(PY) bench/bench_wall.py

clean:
	rm -rf $(VENV) assets/vendor
