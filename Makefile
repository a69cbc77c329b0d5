# The two commands of the README: `make demo` and `make test`. Each builds the environment
# on first use and runs Ray inside a loopback-only network namespace (scripts/loopback-only).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp
NPM_STAMP := contracts/node_modules/.installed-stamp
IPFS_TOOLS := tools/ipfs/node_modules/.installed-stamp
RUN := scripts/loopback-only
# Flower 1.42 for bench/fl_vs_flower.py, in its own venv: Flower pins another Ray than ours.
FLOWER_VENV := .venv-flower
FLOWER_STAMP := $(FLOWER_VENV)/.installed-stamp

.PHONY: demo test env bench bench-fl bench-query flower-env clean contracts ipfs-tools chromium stack-shell

env: $(STAMP)

$(STAMP): pyproject.toml requirements-nodeps.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade "pip>=25"
	$(VENV)/bin/pip install --quiet -e ".[test]"
	$(VENV)/bin/pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

# Node is needed only to recompile contracts and to run anvil; Python users get the
# committed artifacts.
$(NPM_STAMP): contracts/package.json contracts/package-lock.json
	npm ci --prefix contracts --no-audit --no-fund
	touch $@

contracts: $(NPM_STAMP)
	node contracts/compile.mjs

# A Kubo-compatible IPFS daemon (js-ipfs on Node 22, both from npm) for integration tests.
ipfs-tools: $(IPFS_TOOLS)

$(IPFS_TOOLS): tools/ipfs/package.json tools/ipfs/package-lock.json tools/ipfs/.npmrc
	npm ci --prefix tools/ipfs --no-audit --no-fund
	touch $@

# Headless Chromium from Debian, for the test that looks at a run in the real Prefect UI.
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# One loopback-only shell with the local stack up and its environment loaded; `exit` stops it.
stack-shell: $(STAMP) $(NPM_STAMP)
	$(RUN) bash -c '$(VENV)/bin/flai up && . $${FLAI_DATA_DIR:-.flai}/stack/env && bash -i; $(VENV)/bin/flai down --force'

demo: $(STAMP)
	$(RUN) $(VENV)/bin/flai demo

test: $(STAMP) $(NPM_STAMP) $(IPFS_TOOLS) chromium
	$(RUN) $(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(RUN) $(VENV)/bin/python bench/secure_aggregation.py
	$(RUN) $(VENV)/bin/python bench/federated_sql.py
	$(RUN) $(VENV)/bin/python bench/settlement_gas.py

flower-env: $(FLOWER_STAMP)

$(FLOWER_STAMP): bench/flower-requirements.txt
	test -x $(FLOWER_VENV)/bin/python || $(PYTHON) -m venv $(FLOWER_VENV)
	$(FLOWER_VENV)/bin/pip install --quiet --upgrade "pip>=25"
	$(FLOWER_VENV)/bin/pip install --quiet -r bench/flower-requirements.txt
	touch $@

# FLAI against Flower 1.42 on the same partitions and features (4 and 8 providers), and
# `flai query` cold and on a running federation against DuckDB. Long: run on a quiet machine.
bench-fl: $(STAMP) $(FLOWER_STAMP)
	$(RUN) $(VENV)/bin/python bench/fl_vs_flower.py

bench-query: $(STAMP) $(NPM_STAMP)
	$(RUN) $(VENV)/bin/python bench/query_latency.py

clean:
	rm -rf $(VENV) $(FLOWER_VENV) .flai contracts/node_modules tools/ipfs/node_modules
