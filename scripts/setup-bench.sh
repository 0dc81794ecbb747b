#!/usr/bin/env bash
# Makes .venv-bench: snfseq with the `bench` extra (GluonTS DeepAR, the peer of
# benchmarks/bench_forecasting.py; JAX on CPU and BlackJAX, the peer of
# benchmarks/bench_kernels.py). gluonts 0.17 requires pandas<3, so it gets an environment of
# its own instead of downgrading the main one. Run the benchmarks with
#   .venv-bench/bin/python benchmarks/bench_forecasting.py
#   .venv-bench/bin/python benchmarks/bench_kernels.py --threads 1
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .venv-bench ] || python3 -m venv .venv-bench
# shellcheck disable=SC1091
. .venv-bench/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
constraints="$(mktemp)"
echo "torch==2.13.0" >"$constraints"
python -m pip install -q -c "$constraints" -e ".[data,bench]"
rm -f "$constraints"
python -c "import torch, gluonts, jax, blackjax, snfseq; print('bench setup ok: gluonts', \
gluonts.__version__, '| jax', jax.__version__, jax.devices('cpu')[0].platform, '| blackjax', \
blackjax.__version__)"
