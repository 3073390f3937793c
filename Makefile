# FleetOps: `make run` runs the portal, `make test` runs the whole test suite.
# Each creates .venv (Python 3.11+) when missing and installs the pinned requirements when they changed
# since the last install (a sha256 stamp in .venv), then hands over to config/launcher.py.
# Extra arguments go through ARGS, e.g. `make test ARGS="-k embedded -x"`.

VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=

# The first of these that is Python 3.11 or newer creates the venv; override with `make PYTHON=...`.
PYTHON ?= $(shell for p in python3 python3.14 python3.13 python3.12 python3.11 python; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; \
	then echo $$p; break; fi; done)

# sha256 over the given files, computed by the venv's Python (no sha256sum / shasum differences).
HASH = $(PY) -c 'import hashlib, sys; h = hashlib.sha256(); [h.update(open(f, "rb").read()) for f in sys.argv[1:]]; print(h.hexdigest())'

# $(call install,<requirements file>,<files it reads>): pip install only when their content changed.
define install
	@want=$$($(HASH) $(2)); stamp=$(VENV)/.$(1).sha256; \
	if [ "$$want" = "$$(cat $$stamp 2>/dev/null)" ]; then \
		echo "$(1): unchanged since the last install"; \
	else \
		echo "$(1): installing into $(VENV) ..."; \
		$(PY) -m pip install --disable-pip-version-check --quiet --requirement $(1) && echo "$$want" > $$stamp; \
	fi
endef

.PHONY: run serve test services lint deps deps-dev loadtest

run: deps
	@$(PY) -m config.launcher run $(ARGS)

# The production process model (DEBUG=0): nginx routing to gunicorn, its SOS pool and uvicorn; needs nginx.
serve: deps
	@$(PY) -m config.launcher serve $(ARGS)

test: deps-dev
	@$(PY) -m config.launcher test $(ARGS)

services: deps
	@$(PY) -m config.launcher services

lint: deps-dev
	$(PY) -m ruff check .
	$(PY) -m mypy .

# A load-test scenario against a running portal (light, medium, heavy, stress, spike): see loadtest/run.py.
SCENARIO ?= light
HOST ?= http://127.0.0.1:8000
LOAD_VENV := .venv-load
loadtest: deps
	@test -x $(LOAD_VENV)/bin/python || $(PYTHON) -m venv $(LOAD_VENV)
	@want=$$($(HASH) requirements-load.txt); stamp=$(LOAD_VENV)/.requirements-load.txt.sha256; \
	if [ "$$want" != "$$(cat $$stamp 2>/dev/null)" ]; then \
		echo "requirements-load.txt: installing into $(LOAD_VENV) ..."; \
		$(LOAD_VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r requirements-load.txt \
			&& echo "$$want" > $$stamp; \
	fi
	$(PY) loadtest/run.py $(SCENARIO) --host $(HOST) --locust-python $(LOAD_VENV)/bin/python $(if $(TIME),--time $(TIME),)

deps: $(PY)
	$(call install,requirements.txt,requirements.txt)

# requirements-dev.txt includes requirements.txt: both decide, and installing it installs the runtime too.
deps-dev: $(PY)
	$(call install,requirements-dev.txt,requirements-dev.txt requirements.txt)
	@$(HASH) requirements.txt > $(VENV)/.requirements.txt.sha256

$(PY):
	@if [ -z "$(PYTHON)" ]; then echo "FleetOps needs Python 3.11 or newer on PATH (or make PYTHON=/path/to/python3.11)"; exit 1; fi
	@echo "creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "could not create a venv: on Debian/Ubuntu install python3-venv"; exit 1; }
