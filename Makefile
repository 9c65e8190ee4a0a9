# `make run` and `make test` are the whole set-up on a fresh machine: each creates .venv when it is
# missing, installs what it needs (re-installing when pyproject.toml changes) and runs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test check docs perf perf-quick perf-profile perf-load perf-crawl lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# pip 25.1 or later reads the dependency groups (PEP 735) of pyproject.toml.
$(VENV)/.pip: | $(PY)
	$(PIP) install -U 'pip>=25.1'
	touch $@

$(VENV)/.installed-base: pyproject.toml $(VENV)/.pip
	$(PIP) install -e '.[speedups]'
	touch $@

# The test and dev groups: the test servers and tools, and the pinned checkers (ruff, mypy).
$(VENV)/.installed-test: pyproject.toml $(VENV)/.pip
	$(PIP) install -e '.[speedups,socks]' --group test --group dev
	touch $@

$(VENV)/.installed-docs: pyproject.toml $(VENV)/.pip
	$(PIP) install -e . --group docs
	touch $@

$(VENV)/.installed-perf: pyproject.toml $(VENV)/.pip
	$(PIP) install -e '.[speedups]' --group perf
	touch $@

run: $(VENV)/.installed-base
	$(PY) -m hyperhttp

# CI (.ci/run) runs this: the static checks first (import contracts, ruff, mypy --strict), then
# the suite. nginx for tests/integration/test_http2_nginx.py is installed from Debian when missing
# and root, best effort (the "-" and the script itself never fail the target; without nginx
# those skip).
test: $(VENV)/.installed-test
	-$(PY) -m tests.servers.nginx
	$(MAKE) --no-print-directory check
	$(PY) -m pytest $(PYTEST_ARGS)

check: $(VENV)/.installed-test
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check hyperhttp tests perf
	$(VENV)/bin/ruff format --check hyperhttp tests perf
	$(VENV)/bin/mypy hyperhttp

# The side-by-side benchmark (nginx from Debian when it can be installed, else our own server).
perf: $(VENV)/.installed-perf
	$(PY) perf/run.py $(PERF_ARGS)

perf-quick: $(VENV)/.installed-perf
	$(PY) perf/run.py --quick $(PERF_ARGS)

# Where the time goes: a pyinstrument profile of hyperhttp under the benchmark's load.
perf-profile: $(VENV)/.installed-perf
	$(PY) perf/profile.py

# hyperhttp's load generator (`hyperhttp load`) against wrk, one core each (wrk and nginx from
# Debian when they can be installed; without wrk the script says so and skips).
perf-load: $(VENV)/.installed-perf
	$(PY) perf/load_vs_wrk.py $(PERF_ARGS)

# A crawl of a generated farm of 200 sites on one nginx (gzip, redirects, 404s, TLS with HTTP/2):
# hyperhttp, aiohttp and pyreqwest, one core each; PERF_ARGS=--profile profiles hyperhttp's crawl.
perf-crawl: $(VENV)/.installed-perf
	$(PY) perf/crawl.py $(PERF_ARGS)

lint: check

# The documentation site (mkdocs.yml: docs/ and the API reference from the docstrings) into site/;
# --strict turns every warning (a broken link, a page not found) into a failure. CI runs it.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) build site *.egg-info
