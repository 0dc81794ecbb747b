#!/usr/bin/env bash
# The GPU checks, for a machine with a CUDA device (CI has none), in under 5 minutes:
#   1. benchmarks/bench_gpu.py: graphed and eager steps, S = 100 and 10,000, float32 / TF32 /
#      bfloat16, beside the step's own matmul floor (results/gpu.*);
#   2. the CUDA tests (tests/test_cuda.py, tests/test_graphs.py);
#   3. benchmarks/bench_forecast.py on the GPU (results/forecast_cuda.*).
# Each part has its own time limit; results go to benchmarks/results/ and, when $OUT is set,
# are copied there with the logs.
#
#   PYTHONPATH=$PWD bash benchmarks/gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
out="${OUT:-/tmp/snfseq-gpu}"
mkdir -p "$out"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" || exit 1
status=0
(cd benchmarks && timeout 200 python3 bench_gpu.py --device cuda --threads 8 --budget 150) 2>&1 \
  | tee "$out/bench-gpu.log" || status=1
timeout 100 python3 -m pytest -q -p no:cacheprovider -ra --durations=8 \
  tests/test_cuda.py tests/test_graphs.py 2>&1 | tee "$out/gpu-tests.log" || status=1
(cd benchmarks && timeout 45 python3 bench_forecast.py --device cuda) 2>&1 \
  | tail -4 || status=1
cp benchmarks/results/gpu.json benchmarks/results/gpu.md benchmarks/results/forecast_cuda.json \
  benchmarks/results/forecast_cuda.md "$out"/ 2>/dev/null
exit $status
