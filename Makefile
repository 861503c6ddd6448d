# ivr: `make demo` runs ivr on the lab with live SIPp traffic; `make test` runs every test.
# Both install what is missing first (`make setup`).  The lab needs root.

VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
DEBS    := debootstrap sip-tester prometheus espeak-ng sox baresip-core postgresql chromium nodejs
MINUTES ?= 3

.PHONY: setup debs demo test test-unit test-lab lab-up lab-down bench bench-load clean

setup: debs $(STAMP)

debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: setup
	$(BIN)/ivr demo --minutes $(MINUTES)

test: setup
	$(BIN)/ivr lab up
	$(BIN)/mypy --strict ivr tests
	$(BIN)/pytest -q -ra -n 2 --ignore=tests/unit/test_schemathesis.py
	# schemathesis makes its tests from the API's description in each process at run time,
	# which xdist's workers do not run (tests/conftest.py fails a run that drops tests):
	# they get a pass of their own.
	$(BIN)/pytest -q -ra tests/unit/test_schemathesis.py

test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# Benchmarks are not part of `make test`: speed is measured here, never asserted in tests.
bench: setup
	bash bench/run.sh

# SIPp at rising call rates on the lab (minutes; needs root).
bench-load: setup
	$(BIN)/python -m bench.load --rates 5,10,20,50,100 --seconds 60

lab-up: setup
	$(BIN)/ivr lab up

lab-down: $(STAMP)
	$(BIN)/ivr lab down

clean:
	rm -rf $(VENV) .venv-bench build *.egg-info
