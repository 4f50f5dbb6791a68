# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
APT_PACKAGES := prometheus-pushgateway prometheus prometheus-alertmanager postgresql redis-server nginx chromium
# The servers the seed's deployment probes are tested against (started by the tests on loopback).
SERVER_BINARIES := /usr/lib/postgresql/15/bin/initdb /usr/lib/postgresql/15/bin/pg_ctl /usr/bin/pg_dump \
	/usr/bin/psql /usr/bin/redis-server /usr/sbin/nginx
# The browser the HTML report's tests open the pages in (driven by Playwright, never downloaded).
BROWSER := /usr/bin/chromium

.PHONY: demo test test-fast lint bench bench-deps setup system-deps clean

setup: $(STAMP) system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,litellm]'
	touch $(STAMP)

# Debian's Prometheus tools (the real Pushgateway, promtool and amtool used by demo and tests),
# PostgreSQL, Redis and nginx for the backup, cache and load-balancer probes' tests, and
# Chromium for the HTML report's.
system-deps:
	@missing=""; \
	for tool in prometheus-pushgateway promtool amtool prometheus; do \
	  command -v $$tool >/dev/null 2>&1 || missing=1; \
	done; \
	for binary in $(SERVER_BINARIES) $(BROWSER); do \
	  [ -x $$binary ] || missing=1; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  echo "installing $(APT_PACKAGES) (Debian packages)"; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi

demo: setup
	$(BIN)/python -m slo.dev.demo

# `-p no:slo`: the project's own tests are not probes; each test that needs the plugin starts
# its own pytest session (pytester), which loads it afresh. Warnings are errors and every test
# has a hard timeout here, not in pyproject.toml, whose pytest settings also apply to probe runs
# (which is also why pyproject leaves hypothesis' plugin out and this loads it again).
PYTEST_OPTS := -p no:slo -p hypothesispytest -W error --timeout 300 -n 2 -q --junitxml=reports/tests-junit.xml
test: setup
	$(BIN)/python -m pytest $(PYTEST_OPTS)

# While iterating: everything but the tests marked slow (real daemons, Locust, many runs).
test-fast: setup
	$(BIN)/python -m pytest $(PYTEST_OPTS) -m "not slow"

lint: setup
	$(BIN)/ruff check slo probes load tests bench conftest.py
	$(BIN)/ruff format --check slo probes load tests bench conftest.py
	$(BIN)/mypy

# The benchmarks' anchors: blackbox_exporter probes the same target as the checks, wrk is the
# target's ceiling. Only `make bench` needs them.
BENCH_PACKAGES = prometheus-blackbox-exporter wrk

bench-deps:
	@command -v prometheus-blackbox-exporter >/dev/null 2>&1 && command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  echo "installing $(BENCH_PACKAGES) (Debian packages)"; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(BENCH_PACKAGES) >/dev/null; }

bench: setup bench-deps
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) reports/* build *.egg-info
