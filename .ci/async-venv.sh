#!/usr/bin/env bash
# Builds .venv-async: the package with its `async` extra, as users install it, plus pytest (and FastAPI with
# httpx for the async FastAPI example's test). It is a venv of
# its own because aiobotocore pins a narrow botocore range, which would move the main venv's botocore.
# `pip check` proves the set resolves together. Rebuilt when pyproject.toml or this script changes.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv-async
STAMP="$VENV/.installed-async"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ "$0" -nt "$STAMP" ]; then
    "$VENV/bin/python" -m pip install --quiet -e '.[async]' 'pytest>=8.0' 'pytest-timeout>=2.3' \
        'fastapi>=0.115' 'httpx>=0.27'
    "$VENV/bin/python" -m pip check
    touch "$STAMP"
fi
"$VENV/bin/python" -c 'import aiobotocore, botocore, wrapt
print(f"async venv: aiobotocore {aiobotocore.__version__}, botocore {botocore.__version__}, wrapt {wrapt.__version__}")'
