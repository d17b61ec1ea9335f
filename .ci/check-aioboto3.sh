#!/usr/bin/env bash
# The aioboto3 world: .venv-aioboto3 (.ci/aioboto3-venv.sh) has aioboto3 15.5 and what it pins (aiobotocore
# 2.25.1, wrapt 1.x, botocore 1.40) plus llama-index's BedrockConverse. What depends on those versions is
# the client side: the proxy, its awaitables and streams, instrument(), the guard's awaited calls, so the
# async client tests (tests_async/) run there as they do on aiobotocore 3, except the files that prove the
# budget store and ledger across processes and time (races, crashes, journal files, live budgets, leases,
# long holds): the same code on the same stores whatever the client library, proven once in .venv-async
# (make async-check). Then the aioboto3 tests (tests_aioboto3/). Two runs, since each directory has its
# own conftest. A venv that cannot be built fails the run: nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/aioboto3-venv.sh
LEDGER_ONLY=(
    test_race.py test_leases.py test_journal_crash.py test_worker_crash.py test_live_fleet.py
    test_long_calls.py test_request_limits.py test_dense_input.py test_unattributed.py test_hostile_ids.py
    test_exact_money.py test_outage.py test_alert_sinks.py
)
ignored=()
for name in "${LEDGER_ONLY[@]}"; do
    [ -f "tests_async/$name" ] || { echo "check-aioboto3.sh: tests_async/$name is gone; update LEDGER_ONLY" >&2; exit 1; }
    ignored+=(--ignore "tests_async/$name")
done
.venv-aioboto3/bin/python -m pytest -q -p no:cacheprovider tests_async "${ignored[@]}" "$@"
exec .venv-aioboto3/bin/python -m pytest -q -p no:cacheprovider tests_aioboto3 "$@"
