"""benchmarks/bench_posterior.py: its quick path end to end, and its block bootstrap."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from benchmark_scripts import load_benchmark

pytest.importorskip("mediapipe", reason="real face landmarks need the landmark extractor")
pytest.importorskip("pybullet", reason="motion capture needs pybullet")


bench = load_benchmark("bench_posterior")


def test_quick_run_writes_every_scenario_and_variant(tmp_path: Path) -> None:
    bench.main(["--quick", "--threads", "1", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "posterior_quick.json").read_text())
    assert set(report["scenarios"]) == {"half", "keyframes", "bones"}
    for name, scenario in report["scenarios"].items():
        variants = scenario["variants"]
        assert set(variants) == {"gru-nf", "is", "is-time", "pf", "smc"}
        for variant, row in variants.items():
            mean, low, high = row["energy_score"]
            assert low - 1e-6 <= mean <= high + 1e-6 and row["ms_per_step"] > 0
            if variant != "gru-nf":
                assert "energy_score_minus_gru_nf" in row
        assert ("bone_error_mm" in variants["smc"]) == (name == "bones")
    text = (tmp_path / "posterior_quick.md").read_text()
    assert text.count("| smc |") == 6  # one row per scenario in each of the two tables


def test_block_bootstrap_keeps_blocks_inside_sequences() -> None:
    # Two sequences with very different levels: a block crossing them would mix the levels,
    # and resampling whole sequences' worth of windows keeps each sequence's share fixed.
    values = np.concatenate([np.zeros(30), np.full(10, 4.0)])
    owner = [0] * 30 + [1] * 10
    mean, low, high = bench.block_interval(values, owner, block=5, reps=200)
    assert mean == pytest.approx(1.0) and low == pytest.approx(1.0) and high == pytest.approx(1.0)
    noisy = np.random.default_rng(0).normal(size=200)
    mean, low, high = bench.block_interval(noisy, [0] * 200, block=5, reps=500)
    assert low < mean < high and 0.15 < high - low < 0.45  # about 4 standard errors wide
