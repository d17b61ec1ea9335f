#!/usr/bin/env bash
# Builds the venv the FOCUS export tests run the FinOps Foundation's focus-validator from. It lives apart
# from .venv: the validator needs Python >= 3.12 and pins numpy < 2, whose last release (1.26) ships wheels
# up to Python 3.12 only, so it is Python 3.12 (on 3.13 pip compiles numpy for many minutes).
set -euo pipefail
venv=${1:-.venv-focus}
version=2.2.1

find_python() {
    local exe prefix v
    for exe in python3.12 python3; do
        if command -v "$exe" >/dev/null 2>&1 \
            && "$exe" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; then
            command -v "$exe"
            return 0
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.|$)' | sort -rV); do
            prefix="$(pyenv root)/versions/$v/bin/python3"
            if [ -x "$prefix" ]; then
                echo "$prefix"
                return 0
            fi
        done
    fi
    return 1
}

python=$(find_python) || {
    echo "focus-validator $version needs Python 3.12, and none was found" >&2
    exit 1
}
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "focus-validator==$version" "pyarrow<22"  # pyarrow 22+ needs the numpy 2 the validator refuses
# The bundled FOCUS 1.2 rules, and the columnar libraries it loads data with, must import.
"$venv/bin/python" -c "import focus_validator.main, pyarrow, polars, duckdb"
touch "$venv/.installed"
