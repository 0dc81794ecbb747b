"""benchmarks/bench_step.py: its quick run finds the step's matrix products and times them."""

from __future__ import annotations

import json
from pathlib import Path

from benchmark_scripts import load_benchmark

bench = load_benchmark("bench_step")


def test_quick_run_finds_every_product_of_a_step(tmp_path: Path) -> None:
    bench.main(["--quick", "--threads", "1", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "step_quick.json").read_text())
    steps = report["steps"]
    # GRU (1 layer: 2 products) + condition (1) + 5 couplings x 4 linear layers; the refined
    # steps add the point head.
    assert steps["GRU-NF"]["gemm_calls"] == 2 + 1 + 5 * 4
    assert steps["paper"]["gemm_calls"] == steps["mala"]["gemm_calls"] == 24
    assert all(row["step_over_fp32_floor"] > 1 for row in steps.values())
    assert report["profile_gru_nf_16_steps"][0]["self_ms"] > 0
