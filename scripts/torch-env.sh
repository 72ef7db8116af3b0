#!/usr/bin/env bash
# libtorch for tch, from the torch==2.11.0 wheel on PyPI (the only source reachable here).
#
#   scripts/torch-env.sh      ensure .venv in the repo root holds torch 2.11.0
#   . scripts/torch-env.sh    the same, then export LIBTORCH_USE_PYTORCH=1 and put
#                             .venv/bin first on PATH, so cargo builds tch against it
#
# Idempotent: the venv is created only if absent, torch installed only if the venv's
# Python does not already import version 2.11.0. POSIX sh compatible (make's /bin/sh):
# when sourced by a shell without BASH_SOURCE, run it from the repo root or set CAIRN_ROOT.
# No `set -e` here: it would leak into the shell that sources this file.

CAIRN_TORCH_VERSION=2.11.0

if [ -z "${CAIRN_ROOT:-}" ]; then
    if [ -n "${BASH_SOURCE:-}" ]; then
        CAIRN_ROOT=$(cd "$(dirname "${BASH_SOURCE}")/.." && pwd)
    elif [ -f scripts/torch-env.sh ]; then
        CAIRN_ROOT=$(pwd)
    else
        CAIRN_ROOT=$(cd "$(dirname "$0")/.." && pwd)
    fi
fi

cairn_torch_ensure() {
    venv="$CAIRN_ROOT/.venv"
    if [ ! -x "$venv/bin/python" ]; then
        echo "torch-env: creating $venv" >&2
        python3 -m venv "$venv" || return 1
    fi
    have=$("$venv/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null)
    case "$have" in
        "$CAIRN_TORCH_VERSION" | "$CAIRN_TORCH_VERSION"+*) ;;
        *)
            echo "torch-env: installing torch==$CAIRN_TORCH_VERSION into $venv (found '${have:-none}')" >&2
            "$venv/bin/python" -m pip install --quiet "torch==$CAIRN_TORCH_VERSION" || return 1
            ;;
    esac
}

if cairn_torch_ensure; then
    LIBTORCH_USE_PYTORCH=1
    export LIBTORCH_USE_PYTORCH
    case ":$PATH:" in
        *":$CAIRN_ROOT/.venv/bin:"*) ;;
        *) PATH="$CAIRN_ROOT/.venv/bin:$PATH" ;;
    esac
    export PATH
else
    echo "torch-env: could not set up torch $CAIRN_TORCH_VERSION in $CAIRN_ROOT/.venv" >&2
    # `return` when sourced, `exit` when run.
    return 1 2>/dev/null || exit 1
fi
