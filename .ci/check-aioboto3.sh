#!/usr/bin/env bash
# The aioboto3 world: .venv-aioboto3 (.ci/aioboto3-venv.sh) has aioboto3 15.5 and what it pins (aiobotocore
# 2.25.1, wrapt 1.x, botocore 1.40) plus llama-index's BedrockConverse. The async client tests (tests_async/)
# run there as they do on aiobotocore 3, then the aioboto3 ones (tests_aioboto3/). Two runs, since each
# directory has its own conftest. A venv that cannot be built fails the run: nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/aioboto3-venv.sh
.venv-aioboto3/bin/python -m pytest -q -p no:cacheprovider tests_async "$@"
exec .venv-aioboto3/bin/python -m pytest -q -p no:cacheprovider tests_aioboto3 "$@"
