#!/usr/bin/env bash
# The GPU checks, for a machine with a CUDA device (CI has none): the CUDA tests, the test
# modules that need no bundled video, and the forecast benchmark on the GPU. Results go to
# benchmarks/results/ and, when $OUT is set, are copied there too. About 3-5 minutes.
#
#   PYTHONPATH=$PWD bash scripts/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" || exit 1
status=0
python3 -m pytest -q -p no:cacheprovider -ra --durations=10 tests/test_cuda.py \
  tests/test_kernels.py tests/test_energy.py tests/test_flows.py tests/test_metrics.py \
  tests/test_forecast.py tests/test_diagnostics.py tests/test_snf.py tests/test_model.py \
  2>&1 | tee "${OUT:-/tmp}/gpu-tests.log" || status=1
python3 benchmarks/bench_forecast.py --device cuda || status=1
if [ -n "${OUT:-}" ]; then
  cp benchmarks/results/forecast_cuda.json benchmarks/results/forecast_cuda.md "$OUT"/ 2>/dev/null
fi
exit $status
