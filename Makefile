# The README's two commands: `make run` (app + worker + demo on embedded defaults) and `make test`.
# Both do all setup on a fresh machine and are idempotent.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup venv deps frontend migrate run worker test lint imports format mypy bench chromium clean

setup: deps frontend migrate

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch first, pinned: any other version pulls a multi-GB CUDA build on the reference machines.
$(VENV)/.deps-stamp: pyproject.toml | $(PY)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev,bench]"
	touch $@

deps: $(VENV)/.deps-stamp

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

static/vendor/.stamp: node_modules/.stamp static_src/build.mjs $(wildcard static_src/*.js)
	node static_src/build.mjs
	touch $@

frontend: static/vendor/.stamp

migrate: deps
	@mkdir -p var/media
	@test -s var/secret_key || $(PY) -c "import secrets; print(secrets.token_urlsafe(50))" > var/secret_key
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py collectstatic --noinput -v 0

run: setup
	$(PY) manage.py demo_setup
	@bash scripts/run_local.sh $(HOST) $(PORT)

worker: setup
	$(PY) manage.py db_worker --queue-name '*'

chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: deps
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: deps
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

mypy: deps
	$(VENV)/bin/mypy

# Import rules (pyproject [tool.importlinter]) and the size limits (tests/test_architecture.py).
imports: deps
	$(VENV)/bin/lint-imports --no-cache

test: setup chromium lint imports mypy
	$(VENV)/bin/pytest -p no:cacheprovider

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf var node_modules static/vendor
