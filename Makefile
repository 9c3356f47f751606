# Campaign Pulse — `make run` serves on the embedded default, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install clients dashboard run test test-embedded test-services schema demo bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install  ## serve on SQLite + in-process pub/sub (migrates itself)
	$(VENV)/bin/pulse serve --host $(HOST) --port $(PORT)

demo: install  ## fill the embedded database with a demo organization
	$(VENV)/bin/pulse demo

clients:  ## the real-client checks' npm packages, the dashboard build, chromium (Debian)
	scripts/install-clients

dashboard: clients  ## build examples/dashboard/dist (served by `pulse serve` at /dashboard/)

test: install clients  ## the whole suite: embedded default, then PostgreSQL + Redis
	scripts/test

test-embedded: install
	$(PY) -m pytest -q

schema: install  ## regenerate schema.graphql
	$(VENV)/bin/pulse export-schema -o schema.graphql

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) pulse.db pulse.db-* .pytest_cache
