# Two commands do everything: `make demo` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench services clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Until the live demo lands, the main command prices the pricing page's worked examples.
demo: $(STAMP)
	$(VENV)/bin/bedrock-budget price us.anthropic.claude-3-5-haiku-20241022-v1:0 \
		--input-tokens 2000 --output-tokens 500 --cache-read-tokens 10000
	$(VENV)/bin/bedrock-budget price-guardrail --text-units 3000 --policy content_filters --policy denied_topics
	$(VENV)/bin/bedrock-budget plan anthropic.claude-3-5-sonnet-20241022-v2:0 --requests-per-month 1500000 \
		--input-tokens-per-request 4000 --output-tokens-per-request 600

services:
	@bash .ci/ensure-services.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest -q

test: $(STAMP) services lint typecheck
	$(PY) -m pytest -q

bench: $(STAMP) services
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist src/*.egg-info
