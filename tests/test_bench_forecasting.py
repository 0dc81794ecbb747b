"""benchmarks/bench_forecasting.py: its quick path on a small macrodata slice, its scoring of
a broken forecast, and a failing model recorded as "n/a" rather than stopping the run."""

from __future__ import annotations

import math

import pytest
import torch
from benchmark_scripts import load_benchmark

pytest.importorskip("gluonts", reason="the benchmark's peer is GluonTS (pip install snfseq[bench])")
pytest.importorskip("statsmodels", reason="macrodata ships with statsmodels")


bench = load_benchmark("bench_forecasting")
MACRO = bench.quick(next(spec for spec in bench.FULL if spec.name == "macrodata"))


@pytest.fixture(scope="module")
def split():
    return bench.load_split(MACRO)


@pytest.fixture(scope="module")
def rows():
    """Every model once on macrodata: 2 windows, 1 epoch of 3 batches, 100 paths."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures start before conftest's per-test single thread
    try:
        yield bench.benchmark([MACRO], bench.MODELS, seeds=1, samples=100)
    finally:
        torch.set_num_threads(threads)


def test_quick_split_is_two_windows_after_the_training_rows(split):
    assert split.spec.windows == 2 and split.spec.horizon == 8
    assert split.cutoffs == [len(split.target) - 16, len(split.target) - 8]
    assert split.train_windows == split.cutoffs[0] - (16 + 8) + 1
    assert split.target.shape[1] == 12
    test_rows = split.target.iloc[split.cutoffs[0] :].abs().mean().to_numpy()
    assert split.test_scale == pytest.approx(test_rows)


def test_learned_models_get_the_same_steps_and_windows_per_step(split):
    flow, univariate = bench.budget(split, joint=True), bench.budget(split, joint=False)
    assert flow.steps == univariate.steps == math.ceil(split.train_windows / 64)
    assert (flow.rows_per_batch, univariate.rows_per_batch) == (64, 64 * 12)


def test_every_model_has_finite_scores_and_times(rows):
    assert [row["model"] for row in rows] == list(bench.MODELS)
    keys = [s + x for s in bench.SCORES for x in ("", "_sf")] + list(bench.COVERAGES)
    for row in rows:
        assert "error" not in row, row
        for key in [*keys, "fit_s", "predict_s"]:
            assert math.isfinite(row[key]), (row["model"], key)
        assert 0 <= row["coverage_50"] <= row["coverage_90"] <= 1
    by_model = {row["model"]: row for row in rows}
    for model in bench.LEARNED:
        assert by_model[model]["training"]["steps"] == 3, model
    assert by_model[bench.GLUON_NAIVE]["samples"] == 1
    assert by_model[bench.FLOW]["samples"] == by_model[bench.DEEPAR]["samples"] == 100


def test_a_shifted_forecast_scores_worse(split):
    """The same samples moved by two test-scale units of every series score worse."""
    run = bench.run_snfseq(bench.NAIVE, split, seed=0, samples=100)
    shifted = run.samples + 2 * torch.as_tensor(split.test_scale, dtype=run.samples.dtype)
    good, bad = bench.score(split, run.samples), bench.score(split, shifted)
    for key in ("crps", "crps_sf", "energy_score", "energy_score_sf"):
        assert bad[key] > 1.5 * good[key], key
    assert bad["coverage_90"] < good["coverage_90"]


def test_scale_free_crps_is_crps_over_the_test_mean_absolute_value(split):
    one = split.target.iloc[:, :1] * 1000.0  # the same series in other units scores the same
    small = bench.Split(split.spec, one, None, split.cutoffs, split.freq, split.season)
    samples = torch.randn(20, 2, 8, 1) * 50 + float(one.iloc[-1, 0])
    assert bench.score(small, samples)["crps_sf"] == pytest.approx(
        bench.score(small, samples)["crps"] / small.test_scale[0]
    )
    scaled = bench.Split(split.spec, one / 1000.0, None, split.cutoffs, split.freq, split.season)
    assert bench.score(scaled, samples / 1000.0)["crps_sf"] == pytest.approx(
        bench.score(small, samples)["crps_sf"]
    )


def test_summary_and_report_name_every_model_and_the_goals(rows, split):
    summary = bench.aggregate(rows)
    result = {
        "machine": bench.machine(),
        "run_minutes": 0.1,
        "settings": {"quick": True, "seeds": 1, "samples": 100},
        "summary": summary,
    }
    report = bench.markdown(result, {"macrodata": split})
    for model in bench.MODELS:
        assert f"| {model} |" in report
    assert "(a) the flow wins" in report and "(c) the flow's predict time" in report
    assert "n/a" not in report


def test_a_failing_model_is_recorded_as_not_available(split, monkeypatch):
    def broken(model, split, seed, samples):
        raise ValueError("the flow needs two series")

    monkeypatch.setattr(bench, "run_model", broken)
    rows = bench.benchmark([MACRO], [bench.FLOW], seeds=2, samples=10)
    assert [row["error"] for row in rows] == ["ValueError: the flow needs two series"] * 2
    summary = bench.aggregate(rows)
    result = {
        "machine": bench.machine(),
        "run_minutes": 0.1,
        "settings": {"quick": True, "seeds": 2, "samples": 10},
        "summary": summary,
    }
    report = bench.markdown(result, {"macrodata": split})
    assert "n/a (ValueError: the flow needs two series)" in report
    assert "the flow has no scores" in report


def _entry(model, value, predict_s):
    numbers = {key: {"mean": value, "sd": 0.0} for key in bench.COLUMNS}
    return {"dataset": "macrodata", "model": model, **numbers, "predict_s": {"mean": predict_s}}


def test_goals_compare_the_flow_with_the_best_other_model(split):
    summary = [
        _entry(bench.FLOW, 1.04, 0.1),
        _entry(bench.DEEPAR, 1.0, 0.2),
        _entry(bench.NAIVE, 2.0, 0.01),
    ]
    lines = bench.goals(summary, {"macrodata": split})
    # CRPS within 5 % of DeepAR's, predicts faster, but loses the joint scores to DeepAR.
    assert "data units: **NOT MET** (macrodata)" in lines[0]
    assert "wCRPS: **MET**; CRPS: **MET**" in lines[1]
    assert "every dataset: **MET**;" in lines[2]
    summary[0] = _entry(bench.FLOW, 0.9, 0.3)
    lines = bench.goals(summary, {"macrodata": split})
    assert "data units: **MET**; scale-free: **MET**" in lines[0]
    assert "every dataset: **NOT MET** (macrodata);" in lines[2]
    assert "(a) ES 0.900 vs DeepAR (GluonTS)" in lines[-1]
