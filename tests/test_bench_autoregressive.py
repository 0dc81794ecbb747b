"""benchmarks/bench_autoregressive.py: its quick run (trained MAF/NSF sampled by Jacobi sweeps
against the sequential inverse and a coupling flow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_scripts import load_benchmark

pytest.importorskip("mediapipe", reason="the face data are landmarks of the bundled videos")

bench = load_benchmark("bench_autoregressive")


def test_quick_run_compares_jacobi_with_the_sequential_inverse(tmp_path: Path) -> None:
    bench.main(["--quick", "--threads", "1", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "autoregressive_quick.json").read_text())
    features = report["settings"]["features"]
    assert set(report["ms_per_step"]) == {
        "realnvp", "maf sequential", "maf jacobi", "nsf sequential", "nsf jacobi"
    }  # fmt: skip
    for kind in ("maf", "nsf"):
        row = report["jacobi"][kind]
        assert 1 <= row["sweeps_mean"] <= row["sweeps_max"] <= features
        assert row["max_abs_difference"] < 1e-3  # the same samples as the sequential inverse
    assert "| nsf jacobi |" in (tmp_path / "autoregressive_quick.md").read_text()
