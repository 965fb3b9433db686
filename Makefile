# Playground: `make run` to serve http://127.0.0.1:8000, `make test` to run every test, `make test-fast`
# for the inner loop (lint, types and the tests that need no root, in seconds). `make run` and `make test`
# install what is missing first (Debian packages, the virtualenv, the frontend build).

VENV := .venv
PY := $(VENV)/bin/python
# Debian's python3 (not a per-user pyenv) so the unprivileged web user can execute the venv.
SYSTEM_PYTHON := /usr/bin/python3
FRONTEND_SOURCES := $(wildcard frontend/src/*) frontend/build.mjs frontend/package.json

.PHONY: run test test-fast test-postgres unprivileged-pytest bench deps test-deps bench-deps image seed lint frontend clean

run: deps image seed
	$(PY) -m playground.launcher

# Tests marked `alongside` (long, mostly waiting on the kernel) run in a second pytest beside the
# rest, and the tests that use the database run on PostgreSQL (test-postgres, under a minute) beside
# both from the start; their reports follow the main one. Any of the three failing fails the target.
# (test-postgres has a line of its own: make runs a line that calls $(MAKE) even under -n, so
# `make -n test` would run the pytests of a line shared with it.)
test: test-deps lint
	npm test --prefix frontend
	@mkdir -p test-artifacts && rm -f test-artifacts/postgres.failed test-artifacts/postgres.done
	($(MAKE) --no-print-directory test-postgres > test-artifacts/postgres.log 2>&1 || touch test-artifacts/postgres.failed; \
	  touch test-artifacts/postgres.done) &
	$(PY) -m pytest -m alongside -p no:cacheprovider --durations=30 > test-artifacts/alongside.log 2>&1 & alongside=$$!; \
	$(PY) -m pytest -m "not alongside" --durations=30; rest=$$?; \
	wait $$alongside; beside=$$?; \
	echo "--- tests run alongside (test-artifacts/alongside.log):"; cat test-artifacts/alongside.log; \
	while [ ! -e test-artifacts/postgres.done ]; do sleep 1; done; \
	echo "--- tests on PostgreSQL (test-artifacts/postgres.log):"; cat test-artifacts/postgres.log; \
	test $$rest -eq 0 -a $$beside -eq 0 -a ! -e test-artifacts/postgres.failed

# The fast layer, in well under a minute and without Redis, runc or Daphne: lint, formatting,
# types, and the tests that need no root (tests/fast against a fake agent, and the unit tests).
# Both steps run, and the target fails if either did.
test-fast: $(VENV)/.installed
	@failed=0; \
	$(MAKE) --no-print-directory lint || failed=1; \
	$(MAKE) --no-print-directory unprivileged-pytest || failed=1; \
	exit $$failed

# The tests of tests/fast and tests/unit that use the database, on PostgreSQL instead of SQLite: a
# server of their own, started for the run from Debian's package and removed after (tests/pgkit.py;
# PLAYGROUND_TEST_DATABASE, tests/conftest.py). About 320 tests in 40 to 80 s on this 2-core host.
test-postgres: $(VENV)/.installed .stamps/apt-test
	@PLAYGROUND_TEST_DATABASE=postgres $(MAKE) --no-print-directory unprivileged-pytest

# The tests of tests/fast and tests/unit that need no root. Run by root, pytest runs as
# $(FAST_TEST_USER), so nothing it checks can lean on root; its home, caches, data dir and temp
# files are in a scratch dir removed after.
FAST_TEST_USER := nobody
FAST_TEST_GROUP := nogroup
unprivileged-pytest: $(VENV)/.installed
	@failed=0; \
	scratch=$$(mktemp -d); as_user=""; \
	mkdir -p $$scratch/data/web/static; \
	if [ "$$(id -u)" -eq 0 ]; then \
	  chown -R $(FAST_TEST_USER):$(FAST_TEST_GROUP) $$scratch; \
	  as_user="setpriv --reuid=$(FAST_TEST_USER) --regid=$(FAST_TEST_GROUP) --clear-groups"; \
	  $$as_user test -r pyproject.toml -a -x $(PY) || { failed=1; echo "make test-fast: $(FAST_TEST_USER)" \
	    "cannot read $(CURDIR) or run $(PY); make them readable (chmod -R o+rX) or run as another user"; }; \
	fi; \
	$$as_user env HOME=$$scratch TMPDIR=$$scratch PYTHONPYCACHEPREFIX=$$scratch/pycache \
	  PLAYGROUND_DATA_DIR=$$scratch/data PLAYGROUND_SECRET_KEY=fast-tests-only \
	  $(PY) -m pytest -p no:cacheprovider -m "not root" -q tests/fast tests/unit || failed=1; \
	rm -rf $$scratch; \
	exit $$failed

bench: bench-deps image
	$(PY) -m bench

deps: .stamps/apt-run $(VENV)/.installed frontend/dist/.built

test-deps: deps .stamps/apt-test

bench-deps: test-deps .stamps/apt-bench

# docker, the default image (PLAYGROUND_DEFAULT_IMAGE): about 90 s and 135 MB of Debian packages the
# first time, printing its progress; a second once built. busybox too, which tests and bench use.
image: deps
	$(PY) -m sandbox.images build docker --if-missing
	$(PY) -m sandbox.images build busybox --if-missing

# The registry mirror's own images (hello-world, busybox, debian, httpd, nginx), built here from Debian
# packages into its storage (docs/registry.md): about 2.5 min and 60 MB of packages the first time, about
# a second once they are up to date (each image's tags already carry its definition's digest).
seed: image
	$(PY) manage.py registry seed

# Lint: ruff's checks and formatting, the packages' import directions (.importlinter: the web tier
# imports only sandbox.wire of the sandbox host, which never imports the web tier) and mypy (the
# benchmarks too, which no test runs). Every
# step runs; the target fails if any did.
lint: $(VENV)/.installed
	@failed=0; \
	$(VENV)/bin/ruff check . || failed=1; \
	$(VENV)/bin/ruff format --check . || failed=1; \
	$(VENV)/bin/lint-imports || failed=1; \
	$(VENV)/bin/mypy sandbox playground bench || failed=1; \
	exit $$failed

.stamps/apt-%: deploy/install-deps.sh
	deploy/install-deps.sh $*
	@mkdir -p .stamps && touch $@

$(VENV)/.installed: requirements.txt requirements-dev.txt .stamps/apt-run
	test -x $(PY) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

frontend/dist/.built: frontend/package-lock.json $(FRONTEND_SOURCES) .stamps/apt-run
	npm ci --prefix frontend --no-audit --no-fund
	npm run build --prefix frontend
	touch $@

clean:
	rm -rf $(VENV) .stamps frontend/node_modules frontend/dist
