#!/usr/bin/env bash
# Sourced by scripts/serve and scripts/test: makes .venv with entrepot
# installed (editable) and, when asked, the Debian packages the tests need.
# Idempotent and quick when nothing changed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
PY=${PYTHON:-python3}

ensure_venv() {
    local extras=$1 stamp="$VENV/.stamp-$1"
    local want
    want=$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -m venv "$VENV"
    fi
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        if [ -n "$extras" ] && [ "$extras" != "run" ]; then
            "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$extras]"
        else
            "$VENV/bin/python" -m pip install --quiet -e "$ROOT"
        fi
        echo "$want" > "$stamp"
    fi
}

# ensure_debs CMD:PACKAGE ...: installs PACKAGE when CMD is not on PATH.
ensure_debs() {
    local missing=() pair
    for pair in "$@"; do
        if ! command -v "${pair%%:*}" >/dev/null 2>&1; then
            missing+=("${pair#*:}")
        fi
    done
    if [ ${#missing[@]} -gt 0 ]; then
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        echo "installing Debian packages: ${missing[*]}" >&2
        $sudo apt-get update -qq >/dev/null
        # policy-rc.d keeps the packages' own services from starting here.
        DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
            $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}
