#!/usr/bin/env bash
# Runs the test suite (unit tests, doctests, and the notebooks at small sizes).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ] && [ -d .venv ]; then
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
export SNFSEQ_NOTEBOOK_SMALL=1
python -m pytest -q "$@" tests snfseq notebooks --nbmake
