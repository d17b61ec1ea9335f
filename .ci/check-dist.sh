#!/usr/bin/env bash
# Uses the package the way users get it: builds the wheel and the sdist, installs each into a fresh venv
# outside the checkout and runs the CLI and the library from another directory. An editable install hides
# files the distributions forget; this does not.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/bedrock-budget-dist.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The wheel is built from the sdist (build's default), so the sdist is proved complete too.
if ! "$root/.venv/bin/python" -m build --outdir "$work/dist" "$root" >"$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    exit 1
fi
wheel=$(ls "$work"/dist/*.whl)
sdist=$(ls "$work"/dist/*.tar.gz)

pip_install() {
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
        | { grep -v '^WARNING: Location' || true; }
}

# Run from a directory where nothing of the checkout is importable.
mkdir -p "$work/elsewhere"
cd "$work/elsewhere"
venv="$work/venv"
"$python" -m venv "$venv"

check_installed() {
    "$venv/bin/bedrock-budget" prices validate
    "$venv/bin/bedrock-budget" price amazon.nova-micro-v1:0 --input-tokens 1000 --output-tokens 200 --json \
        | "$venv/bin/python" -c 'import json, sys; assert json.load(sys.stdin)["total_usd"] == "0.000063"'
    "$venv/bin/bedrock-budget" demo --json --calls 40 --latency 0 >"$work/demo.json"
    "$venv/bin/python" "$root/.ci/dist_smoke.py" "$root" "$work/demo.json"
}

echo "dist-check: $(basename "$wheel") in a fresh venv"
pip_install "$wheel"
check_installed

# The same venv, the package replaced by an install from the sdist (its dependencies are already there).
echo "dist-check: $(basename "$sdist")"
pip_install --force-reinstall --no-deps "$sdist"
check_installed
echo "dist-check: ok"
