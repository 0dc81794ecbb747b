"""benchmarks/bench_scaling.py: its quick run, training probe subprocess included."""

from __future__ import annotations

import json
from pathlib import Path

from benchmark_scripts import load_benchmark

bench = load_benchmark("bench_scaling")


def test_quick_run_measures_every_axis(tmp_path: Path) -> None:
    bench.main(["--quick", "--threads", "1", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "scaling_quick.json").read_text())
    assert set(report["step_ms_by_samples"]) == {"GRU-NF", "paper", "mala"}
    assert all(ms > 0 for row in report["step_ms_by_samples"].values() for ms in row.values())
    assert set(report["forecast_ms_by_horizon"]) == {"1", "4"}
    training = report["training"]["small"]["20"]
    assert training["windows_per_s"] > 0 and training["peak_rss_mib"] > 100
    assert "## Against D" in (tmp_path / "scaling_quick.md").read_text()
