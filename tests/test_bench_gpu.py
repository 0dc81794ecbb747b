"""benchmarks/bench_gpu.py in quick mode on the CPU: the eager rows, the floors and the
capture probe's buffered path (the CUDA parts run in benchmarks/gpu.sh)."""

from __future__ import annotations

import json

from benchmark_scripts import load_benchmark


def test_quick_run_writes_rows_floors_and_a_table(tmp_path):
    bench = load_benchmark("bench_gpu")
    report = bench.main(["--quick", "--threads", "1", "--out", str(tmp_path)])
    variants = {row["variant"] for row in report["rows"]}
    assert variants == set(bench.VARIANTS)
    assert {row["precision"] for row in report["rows"]} == {"float32", "bfloat16"}
    assert all(row["eager_ms"] > 0 and row["sample_steps_per_s"] > 0 for row in report["rows"])
    assert all(floor["floor_ms"] > 0 for floor in report["floors"])
    assert report["skipped"] == [] and report["capture_probe"] == "no CUDA device"
    saved = json.loads((tmp_path / "gpu_quick.json").read_text())
    assert len(saved["rows"]) == len(report["rows"])
    assert "| S | precision | variant |" in (tmp_path / "gpu_quick.md").read_text()


def test_the_capture_probe_runs_its_buffered_step_on_a_cpu():
    load_benchmark("bench_gpu").probe(6, "cpu")
