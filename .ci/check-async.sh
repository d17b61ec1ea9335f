#!/usr/bin/env bash
# The async client tests (tests_async/) in .venv-async, which .ci/async-venv.sh builds from the `async`
# extra. A venv that cannot be built fails the run: the async tests are never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/async-venv.sh
exec .venv-async/bin/python -m pytest -q -p no:cacheprovider tests_async "$@"
