# The two commands of the README: `make demo` and `make test`. Each builds the environment
# on first use and runs Ray inside a loopback-only network namespace (scripts/loopback-only).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp
RUN := scripts/loopback-only

.PHONY: demo test env bench clean

env: $(STAMP)

$(STAMP): pyproject.toml requirements-nodeps.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade "pip>=25"
	$(VENV)/bin/pip install --quiet -e ".[test]"
	$(VENV)/bin/pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

demo: $(STAMP)
	$(RUN) $(VENV)/bin/flai demo

test: $(STAMP)
	$(RUN) $(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(RUN) $(VENV)/bin/python bench/secure_aggregation.py

clean:
	rm -rf $(VENV) .flai
