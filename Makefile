# The two commands a new user needs: `make demo` and `make test`.
# `make demo` installs only what the demo uses (the package with its runtime dependencies and
# Debian's Pushgateway); `make test` (and `make setup`) add the rest: the dev tools, LiteLLM's
# proxy, Prometheus, Alertmanager, PostgreSQL, Redis and nginx.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed
DEVSTACK_LINK := $(VENV)/devstack-path/devstack
DEMO_APT_PACKAGES := prometheus-pushgateway
APT_PACKAGES := $(DEMO_APT_PACKAGES) prometheus prometheus-alertmanager postgresql redis-server nginx chromium
# The servers the seed's deployment probes are tested against (started by the tests on loopback).
SERVER_BINARIES := /usr/lib/postgresql/15/bin/initdb /usr/lib/postgresql/15/bin/pg_ctl /usr/bin/pg_dump \
	/usr/bin/psql /usr/bin/redis-server /usr/sbin/nginx
# The browser the HTML report's tests open the pages in (driven by Playwright, never downloaded).
BROWSER := /usr/bin/chromium

.PHONY: demo test test-fast lint bench bench-deps setup system-deps demo-system-deps clean

setup: $(STAMP) $(DEVSTACK_LINK) system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The package and its runtime dependencies only: what `make demo` and a probe runner need.
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,litellm]'
	touch $(STAMP) $(DEMO_STAMP)

# The development package (reference stack, daemons, demo) is not in the wheel: the venv
# imports it from the checkout through a directory that holds only a link to it.
$(DEVSTACK_LINK): | $(BIN)/python
	mkdir -p $(dir $@)
	ln -sfn $(CURDIR)/devstack $@
	$(BIN)/python -c 'import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "devstack.pth").write_text(sys.argv[1] + "\n")' $(abspath $(dir $@))

# Installs the Debian packages in $(1) when one of the commands or files in $(2) is missing.
# Debian starts a service for some of them (the Pushgateway on :9091, PostgreSQL, Redis, nginx
# on :80): neither the demo nor the tests use those services, they start their own on free
# loopback ports, so the note says how to stop them.
define apt_install
	@missing=""; \
	for tool in $(2); do \
	  command -v $$tool >/dev/null 2>&1 || [ -x $$tool ] || missing=1; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  echo "installing $(1) (Debian packages)"; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(1) >/dev/null; \
	  echo "note: Debian may have started these packages' own services; nothing here uses them" \
	    "(stop them with: sudo systemctl disable --now SERVICE)"; \
	fi
endef

# Debian's Pushgateway, the one server the demo starts (on a free loopback port).
demo-system-deps:
	$(call apt_install,$(DEMO_APT_PACKAGES),prometheus-pushgateway)

# Debian's Prometheus tools (the real Pushgateway, promtool and amtool used by the tests),
# PostgreSQL, Redis and nginx for the backup, cache and load-balancer probes' tests, and
# Chromium for the HTML report's.
system-deps:
	$(call apt_install,$(APT_PACKAGES),prometheus-pushgateway promtool amtool prometheus $(SERVER_BINARIES) $(BROWSER))

demo: $(DEMO_STAMP) $(DEVSTACK_LINK) demo-system-deps
	$(BIN)/python -m devstack.demo

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
	$(BIN)/ruff check slo devstack probes load tests bench conftest.py
	$(BIN)/ruff format --check slo devstack probes load tests bench conftest.py
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
