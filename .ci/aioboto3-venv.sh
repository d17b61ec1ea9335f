#!/usr/bin/env bash
# Builds .venv-aioboto3: the package with its `async` extra next to aioboto3 15.5, which pins aiobotocore
# 2.25.1 and with it wrapt 1.x and botocore 1.40 — the set an aioboto3 user has.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash .ci/async-venv.sh .venv-aioboto3 'aioboto3==15.5.*' \
    'llama-index-llms-bedrock-converse==0.15.*' 'llama-index-core==0.14.*'
