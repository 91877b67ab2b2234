# Two commands do everything: `make run` (the demo) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint bench bench-rollout bench-api bench-informer bench-failover bench-live soak install messages

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

# Tests run on PostgreSQL: DATABASE_URL when set; else the server at 127.0.0.1:5432 (PGHOST,
# PGPORT); else a throwaway cluster that scripts/ensure-postgres starts for the run and removes
# after it (installing Debian's postgresql when root and missing). They drive a real headless
# Chromium, installed from Debian's packages when missing. PYTEST_ARGS picks tests.
test: $(STAMP) messages
	@scripts/ensure-chromium
	$(BIN)/ruff check .
	DATABASE_URL=sqlite://:memory: $(BIN)/python manage.py makemigrations --check --dry-run --settings=config.settings.test
	scripts/ensure-postgres $(BIN)/pytest $(PYTEST_ARGS)

# The zh_Hans catalogue, compiled (the .mo files are build output and stay untracked); gettext is
# installed when root and missing. `make run` compiles it in scripts/run-demo, where a missing
# msgfmt only means English.
messages: $(STAMP)
	@scripts/ensure-gettext
	$(BIN)/python manage.py compilemessages -v 0 --ignore '.venv/*'

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Benchmarks against their own databases (rt_bench, rt_bench_empty; never the test database),
# written to docs/performance.md. BENCH_SCALE=1.0 seeds the full 1M deployments (about a
# minute); the default 0.1 is quick; BENCH_ARGS=--reseed seeds again. wrk comes from Debian's
# packages when root and missing (scripts/ensure-wrk).
BENCH_SCALE ?= 0.1
BENCH_DURATION ?= 5
BENCH_ROUNDS ?= 3
bench: $(STAMP)
	@scripts/ensure-wrk
	scripts/ensure-postgres --url BENCH_DATABASE_URL=rt_bench --url BENCH_EMPTY_DATABASE_URL=rt_bench_empty \
	  $(BIN)/python -m bench.run --scale $(BENCH_SCALE) --duration $(BENCH_DURATION) --rounds $(BENCH_ROUNDS) $(BENCH_ARGS)

# The rollout engine at scale: the reconciler before issue 10 (BENCH_ROLLOUT_BASELINE) next to
# this tree, two reconcilers each, against a fake Kubernetes API on loopback, on PostgreSQL
# databases rt_bench_rollout_before/_after (BENCH_ROLLOUT_DATABASE). 5 to 10 minutes; writes
# bench/results/rollout.json and the "Rollout engine" section of docs/performance.md.
# BENCH_ROLLOUT_ARGS="--small 50 --large 200 --quiet 10" is a quicker run.
BENCH_ROLLOUT_BASELINE ?= c5811d9
bench-rollout: $(STAMP)
	scripts/ensure-postgres $(BIN)/python -m bench.rollout --baseline $(BENCH_ROLLOUT_BASELINE) $(BENCH_ROLLOUT_ARGS)

# Live admin pages (issue 19): the tree before it (BENCH_LIVE_BASELINE) next to this tree under gunicorn and wrk,
# on rt_bench_live_before/_after; a few minutes. Writes bench/results/live_pages.json and the
# "Live pages" section of docs/performance.md. wrk is installed when root and missing.
BENCH_LIVE_BASELINE ?= f32120d
bench-live: $(STAMP)
	@scripts/ensure-wrk
	scripts/ensure-postgres $(BIN)/python -m bench.live_pages --baseline $(BENCH_LIVE_BASELINE) $(BENCH_LIVE_ARGS)

# Issue 19's two comparisons, BENCH_BASELINE (the tree before it, unpacked with git archive) next to
# this tree in one run, each writing its section of docs/performance.md: the status endpoint and
# a 1-app ingest against their floor views (on rt_bench, seeded at BENCH_SCALE when needed), and
# one reconciler's RSS following 10,000 Jobs against its idle RSS (database rt_bench_informer).
BENCH_BASELINE ?= 1cb8a85
bench-api: $(STAMP)
	@scripts/ensure-wrk
	scripts/ensure-postgres --url BENCH_DATABASE_URL=rt_bench \
	  $(BIN)/python -m bench.api --baseline $(BENCH_BASELINE) --scale $(BENCH_SCALE) --duration $(BENCH_DURATION) --rounds $(BENCH_ROUNDS)

bench-informer: $(STAMP)
	scripts/ensure-postgres $(BIN)/python -m bench.informer_memory --baseline $(BENCH_BASELINE)

# A reconciler SIGKILLed mid-launch (100 apps): main before issue 20 (BENCH_FAILOVER_BASELINE)
# next to this tree. About 4 minutes (the baseline waits out its 120 s lease); writes
# bench/results/failover.json and the "Reconciler failover" section of docs/performance.md.
BENCH_FAILOVER_BASELINE ?= 7d51728
bench-failover: $(STAMP)
	scripts/ensure-postgres $(BIN)/python -m bench.failover --baseline $(BENCH_FAILOVER_BASELINE) $(BENCH_FAILOVER_ARGS)

# The concurrency and fault tests at higher counts (override any of the variables), without the per-test
# timeout of `make test`.
soak: $(STAMP)
	HARDENING_EXAMPLES=$${HARDENING_EXAMPLES:-300} HARDENING_STEPS=$${HARDENING_STEPS:-50} \
	CHAOS_SEEDS=$${CHAOS_SEEDS:-10} RACE_OPERATIONS=$${RACE_OPERATIONS:-5000} \
	RACE_THREADS=$${RACE_THREADS:-16} FAULT_APPS=$${FAULT_APPS:-40} \
	scripts/ensure-postgres $(BIN)/pytest -o timeout=0 -p no:logging tests/concurrency tests/releases/reconciler/test_faults.py $(SOAK_ARGS)
