# mev_assets: `make demo` runs the main job on the embedded default, `make test` runs the suite,
# `make dev` runs the live lane with the Dagster UI on port 3000.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := tools
export MEV_HOME ?= $(CURDIR)/.mev_home
export DAGSTER_HOME ?= $(MEV_HOME)/dagster

.PHONY: setup demo test dev bench lint clean

setup: $(VENV)/.installed $(TOOLS)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(TOOLS)/.installed: mev_assets/devnet/npm/package.json mev_assets/devnet/npm/package-lock.json
	mkdir -p $(TOOLS)
	cp mev_assets/devnet/npm/package.json mev_assets/devnet/npm/package-lock.json $(TOOLS)/
	cd $(TOOLS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(VENV)/bin/mev-assets demo

test: setup
	$(PY) -m pytest -q

dev: setup
	$(VENV)/bin/mev-assets dev

lint: setup
	$(VENV)/bin/ruff check mev_assets tests benchmarks

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) $(TOOLS) .mev_home
