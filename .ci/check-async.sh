#!/usr/bin/env bash
# The async client tests (tests_async/) run in their own venv, .venv-async: aiobotocore pins a narrow
# botocore range, which would move the main venv's botocore. The venv is built here, from the `async`
# extra as users install it; pip check proves the set resolves together. A venv that cannot be built
# fails the run: the async tests are never skipped.
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
    "$VENV/bin/python" -m pip install --quiet -e '.[async]' 'pytest>=8.0' 'pytest-timeout>=2.3'
    "$VENV/bin/python" -m pip check
    touch "$STAMP"
fi
"$VENV/bin/python" - <<'PY'
import aiobotocore, botocore, wrapt
print(f"async venv: aiobotocore {aiobotocore.__version__}, botocore {botocore.__version__}, wrapt {wrapt.__version__}")
PY
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests_async "$@"
