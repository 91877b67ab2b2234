# Two commands do everything: `make run` (the demo) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint bench install messages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# Migrate (SQLite unless DATABASE_URL), translations, static files, demo data, then gunicorn and
# the reconciler in the foreground until Ctrl-C. PORT (default 8000) and HOST choose the address.
run: $(STAMP)
	@scripts/run-demo

# Tests run on PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/releasetrain)
# and drive a real headless Chromium, installed from Debian's packages when missing.
test: $(STAMP) messages
	@scripts/ensure-chromium
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=config.settings.test
	$(BIN)/pytest

# The zh_Hans catalogue, compiled (the .mo files are build output and stay untracked).
# `make run` compiles it in scripts/run-demo, where a missing msgfmt only means English.
messages: $(STAMP)
	@command -v msgfmt >/dev/null || { echo "msgfmt is missing: apt-get install gettext" >&2; exit 1; }
	$(BIN)/python manage.py compilemessages -v 0 --ignore '.venv/*'

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
