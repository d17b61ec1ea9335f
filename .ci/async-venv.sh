#!/usr/bin/env bash
# Builds an async venv: the package with its `async` extra, as users install it, plus pytest, FastAPI and
# httpx (for the async FastAPI example's test) and whatever
# else the arguments name. It is a venv of its own because aiobotocore pins a narrow botocore range, which
# would move the main venv's botocore. `pip check` proves the set resolves together. Rebuilt when
# pyproject.toml, this script or the requirements change.
#
#   bash .ci/async-venv.sh                       -> .venv-async (the newest aiobotocore the extra allows)
#   bash .ci/async-venv.sh VENV REQUIREMENT...   -> VENV with the extra plus those requirements
#                                                   (.ci/aioboto3-venv.sh: aioboto3, aiobotocore 2.x, wrapt 1.x)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${1:-.venv-async}"
shift || true
STAMP="$VENV/.installed-async"
WANT="$*"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ "$0" -nt "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    "$VENV/bin/python" -m pip install --quiet -e '.[async]' 'pytest>=8.0' 'pytest-timeout>=2.3' \
        'fastapi>=0.115' 'httpx>=0.27' "$@"
    "$VENV/bin/python" -m pip check
    printf '%s' "$WANT" >"$STAMP"
fi
"$VENV/bin/python" -c 'import aiobotocore, botocore, wrapt
print(f"async venv: aiobotocore {aiobotocore.__version__}, botocore {botocore.__version__}, wrapt {wrapt.__version__}")'
