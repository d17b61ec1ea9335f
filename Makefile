# Two commands do everything: `make demo` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
RUNTIME := $(VENV)/.installed-runtime
# The FinOps Foundation's focus-validator, which the FOCUS export tests run: a venv of its own (see the script).
FOCUS_VENV := .venv-focus
FOCUS_STAMP := $(FOCUS_VENV)/.installed

.PHONY: demo test checks lint typecheck unit dist-check async-venv async-check aioboto3-check bench services clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# The demo needs only the package; the tests need the dev extras too.
$(RUNTIME): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	@touch $(RUNTIME)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP) $(RUNTIME)

# The main job: a live, multi-tenant demo against a local fake Bedrock (no AWS account needed).
demo: $(RUNTIME)
	$(VENV)/bin/bedrock-budget demo

services:
	@bash .ci/ensure-services.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests tests_async tests_aioboto3 bench examples .ci
	$(VENV)/bin/ruff format --check src .ci

typecheck: $(STAMP)
	$(VENV)/bin/mypy

$(FOCUS_STAMP): .ci/focus-venv.sh
	bash .ci/focus-venv.sh $(FOCUS_VENV)

# Two workers: most of the suite waits on Redis, subprocesses and TTLs, so two share the two cores well
# (5 minutes instead of 9 here); every test keeps its own keys, ports and services, so order does not matter.
# It needs the Redis and Sentinel of `services` up before it starts.
unit: $(STAMP) $(FOCUS_STAMP) services
	$(PY) -m pytest -q -n 2

# The built wheel and sdist, installed into fresh venvs outside the checkout: what `pip install` gives users.
dist-check: $(STAMP)
	bash .ci/check-dist.sh

# The async (aiobotocore) client tests, in their own venv (.venv-async): aiobotocore pins botocore. Their
# budget tests use the real Redis and start a Cluster, so they wait for the services.
async-venv:
	bash .ci/async-venv.sh

async-check: services async-venv
	bash .ci/check-async.sh

# The client-side async tests, and the aioboto3 ones (tests_aioboto3/: its Session, instrument(), llama-index), in
# .venv-aioboto3: aioboto3 15.5 pins aiobotocore 2.25.1, and with it wrapt 1.x and botocore 1.40.
aioboto3-check: services
	bash .ci/check-aioboto3.sh

# Everything runs side by side, four jobs at a time, each job's output kept together: the four venvs build
# at once, then the main suite (the longest job, so it is listed first and starts as soon as .venv and
# .venv-focus are ready) runs beside the async suites, the lint, the type check and the wheel check. Half of
# the main suite's time is waiting (Redis, subprocesses, TTLs), which the other jobs fill. Its tests do not
# depend on the machine's speed: clocks the tests step, and waits on conditions rather than on periods.
checks: $(STAMP) $(FOCUS_STAMP) services unit async-check aioboto3-check lint typecheck dist-check

test:
	$(MAKE) --no-print-directory --jobs=4 --output-sync=target checks

bench: $(STAMP) services
	bash .ci/async-venv.sh
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) $(FOCUS_VENV) .venv-async .venv-aioboto3 .mypy_cache .ruff_cache .pytest_cache build dist src/*.egg-info
