"""benchmarks/bench_quality.py: its quick run into a temporary folder (the JSON and report
structure, verdicts among three words), and the statistics it rests on (the claims rule, the
block bootstrap, the pooled energy distance, the noise-matched control's scale) on numbers
whose answer is known."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
import torch
from benchmark_scripts import load_benchmark

from snfseq import metrics

pytest.importorskip("mediapipe", reason="the face data are landmarks of the bundled videos")
pytest.importorskip("pybullet", reason="the body data are DeepMimic clips shipped with pybullet")


bench = load_benchmark("bench_quality")
import quality_stats as stats  # noqa: E402  (importable once the script's folder is on the path)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The --quick run, once, into its own temporary folder: (folder, JSON)."""
    out = tmp_path_factory.mktemp("quality")
    threads = torch.get_num_threads()
    try:
        result = bench.main(["--quick", "--threads", "1", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    return out, result


def _studies(result):
    return [
        (dataset, size, study)
        for dataset, entry in result["datasets"].items()
        for size, study in entry["studies"].items()
    ]


# ------------------------------------------------------------------------- the quick run


def test_quick_run_writes_its_json_and_report_only(quick):
    out, result = quick
    assert sorted(p.name for p in out.iterdir()) == ["quality_quick.json", "quality_quick.md"]
    written = json.loads(
        (out / "quality_quick.json").read_text(),
        parse_constant=lambda name: pytest.fail(f"{name} in the JSON"),
    )
    assert written == json.loads(json.dumps(result))
    assert written["settings"]["quick"] and written["settings"]["samples"] == 20
    assert [(d, s) for d, s, _ in _studies(written)] == [
        ("face", "small"),
        ("face", "paper"),
        ("body", "small"),
    ]


def test_every_study_scores_every_variant_with_intervals(quick):
    _, result = quick
    names = [
        *bench.runs().keys() - set(bench.SMC),
        *(f"{n}+w" for n in ("paper", "rwm", "mala", "hmc")),
        *bench.SMC,
        *(bench.control(n) for n in bench.JUDGED),
    ]
    for dataset, size, study in _studies(result):
        assert sorted(study["variants"]) == sorted(names), (dataset, size)
        for name, variant in study["variants"].items():
            for key in bench.WINDOW_KEYS:
                numbers = variant["metrics"][key]
                if key == "apd" and name.endswith(("+w", "+smc")):
                    continue  # undefined (None) where the weights sit on one path
                assert numbers["low"] <= numbers["high"], (name, key)
                assert np.isfinite(numbers["mean"]), (name, key)
            horizon = result["settings"]["horizon"]
            assert len(variant["per_step"]["energy_score_step"]["mean"]) == horizon
            assert variant["cost_ms_per_step"] > 0
        assert study["variants"]["gru-nf"]["metrics"]["ess"]["mean"] == 20
        assert study["variants"]["mala+w"]["metrics"]["ess"]["mean"] <= 20
        for record in study["training"]:
            assert np.isfinite(record["heldout_nll"]) and record["epochs_run"] == 2


def test_verdicts_are_among_the_three_words_for_every_judged_pair(quick):
    _, result = quick
    for _, _, study in _studies(result):
        pairs = [(c["refinement"], c["baseline"]) for c in study["claims"]]
        assert pairs == [(name, base) for name in bench.JUDGED for base in bench.baselines_of(name)]
        for claim in study["claims"]:
            for key in ("energy_distance", "apd", "fidelity", "horizon"):
                assert claim[key] in stats.VERDICTS


def test_report_has_every_section_and_every_variant(quick):
    out, result = quick
    report = (out / "quality_quick.md").read_text()
    for heading in (
        "## Claims at a glance",
        "## face, small model",
        "## face, paper model",
        "## body, small model",
        "### Paired differences",
        "### Claims",
        "### Noise-matched controls",
    ):
        assert heading in report
    assert report.count("Held-out NLL per feature") == 3
    for name in result["datasets"]["body"]["studies"]["small"]["variants"]:
        assert f"| {name} |" in report
    assert "crawl" in report and "carphone" in report


def test_controls_report_the_validation_spread_they_match(quick):
    _, result = quick
    widened = 0
    for _, _, study in _studies(result):
        assert set(study["controls"]) == set(bench.JUDGED)
        for control in study["controls"].values():
            assert 0 <= control["sigma_zero_share"] <= 1
            if control["sigma_zero_share"] == 1:  # the control is GRU-NF itself
                assert control["val_apd_control"] == control["val_apd_gru_nf"]
            else:  # noise added after sampling widens GRU-NF towards the refinement
                widened += 1
                assert control["val_apd_control"] > control["val_apd_gru_nf"]
    assert widened


def test_the_figure_is_drawn_from_the_result(quick, tmp_path):
    pytest.importorskip("matplotlib")
    _, result = quick
    bench.plot(result, tmp_path / "quality.png")
    assert (tmp_path / "quality.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------- the statistics


@pytest.mark.parametrize(
    ("shift", "direction", "expected"),
    [
        (0.5, "higher", "held"),
        (0.5, "lower", "not held"),
        (-0.5, "lower", "held"),
        (-0.5, "higher", "not held"),
        (0.0, "higher", "inconclusive"),
        (0.0, "lower", "inconclusive"),
    ],
)
def test_the_claims_rule_on_synthetic_paired_differences(shift, direction, expected):
    rng = np.random.default_rng(1)
    difference = shift + rng.normal(0, 1, 120)
    difference -= difference.mean() - shift  # centred exactly where the case says
    indices = stats.block_indices([60, 40, 20], block=6, reps=1000)
    assert stats.verdict(stats.interval(difference, indices), direction) == expected


def test_fidelity_is_kept_unless_an_error_interval_lies_above_zero():
    worse, level, better = (
        {"low": 0.1, "high": 0.3},
        {"low": -0.1, "high": 0.1},
        {"low": -0.3, "high": -0.1},
    )
    assert stats.fidelity_verdict(level, better) == "held"
    assert stats.fidelity_verdict(level, worse) == "not held"
    assert stats.fidelity_verdict(worse, better) == "not held"
    assert stats.fidelity_verdict({"low": None, "high": None}, level) == "inconclusive"


def test_block_bootstrap_blocks_stay_inside_their_sequence():
    groups, block = [30, 7, 50, 1, 12], 12
    indices = stats.block_indices(groups, block, reps=300, seed=4)
    assert indices.shape == (300, sum(groups))
    offset = 0
    for count in groups:
        part = indices[:, offset : offset + count]
        assert part.min() >= offset and part.max() < offset + count
        length = min(block, count)
        for start in range(0, count, length):  # each block: consecutive windows
            run = part[:, start : start + length]
            assert (np.diff(run, axis=1) == 1).all()
        offset += count
    # Blocks start anywhere their sequence allows: not a fixed tiling.
    assert len(np.unique(indices[:, 0])) == 30 - 12 + 1


def test_intervals_of_correlated_windows_widen_with_the_block():
    rng = np.random.default_rng(0)
    smooth = np.repeat(rng.normal(0, 1, 20), 12)  # runs of 12 equal windows
    narrow = stats.interval(smooth, stats.block_indices([240], 1, 2000))
    wide = stats.interval(smooth, stats.block_indices([240], 12, 2000))
    assert wide["high"] - wide["low"] > 2 * (narrow["high"] - narrow["low"])


def _pooled(samples, truth, w, chosen):
    """metrics.energy_distance of the chosen windows' forecasts pooled vs their truths."""
    return float(
        metrics.energy_distance(
            truth[chosen].double(),
            samples[:, chosen].double().reshape(-1, *samples.shape[2:]),
            event_dims=2,
            y_weights=w[:, chosen].reshape(-1).double(),
        )
    )


def test_pooled_energy_distance_is_the_energy_distance_of_the_pooled_windows():
    torch.manual_seed(0)
    samples, truth = torch.randn(30, 5, 4, 3), torch.randn(5, 4, 3) + 0.5
    log_weights = torch.randn(30, 5)
    for weights in (None, log_weights):
        matrices = stats.pooled_matrices(samples, truth, weights)
        w = torch.full((30, 5), 1 / 30) if weights is None else torch.softmax(weights.double(), 0)
        every = _pooled(samples, truth, w, list(range(5)))
        assert stats.pooled_energy_distance(*matrices) == pytest.approx(every, rel=1e-9)
        # A replicate drawing window 0 twice and window 3 once: the within-window part of
        # windows 0, 0, 3 and the between-window part of the pair (0, 3) only.
        one, two, both = (_pooled(samples, truth, w, c) for c in ([0], [3], [0, 3]))
        between = (4 * both - one - two) / 2
        expected = (2 * one + two) / 3 / 5 + 4 / 5 * between
        replicate = stats.pooled_energy_distance(*matrices, counts=np.array([[2, 0, 0, 1, 0]]))
        assert replicate[0] == pytest.approx(expected, rel=1e-9)


def test_pooled_replicates_centre_on_the_estimate_unlike_the_plugged_in_multiset():
    torch.manual_seed(1)
    truth = torch.randn(40, 6, 2).cumsum(0)  # windows far apart, forecasts near their truth
    samples = truth + 0.3 * torch.randn(50, 40, 6, 2)
    matrices = stats.pooled_matrices(samples, truth)
    value = stats.pooled_energy_distance(*matrices)
    indices = stats.block_indices([40], block=1, reps=2000, seed=0)
    counts = np.stack([np.bincount(row, minlength=40) for row in indices])
    replicates = stats.pooled_energy_distance(*matrices, counts=counts)
    assert abs(replicates.mean() - value) < 0.1 * value
    c = counts / 40
    kernel = 2 * matrices[0] - matrices[1] - matrices[2]
    plugged = np.einsum("rb,bc,rc->r", c, kernel, c)  # copies counted as agreeing windows
    assert plugged.mean() > 1.3 * value


def test_thinned_between_window_pairs_approximate_all_pairs():
    torch.manual_seed(2)
    truth = torch.randn(40, 5, 2).cumsum(0)
    samples = truth + 0.5 * torch.randn(100, 40, 5, 2)
    for weights in (None, torch.randn(100, 40)):
        exact = stats.pooled_matrices(samples, truth, weights)
        every = stats.pooled_matrices(samples, truth, weights, thin=100)
        thinned = stats.pooled_matrices(samples, truth, weights, thin=20)
        for ours, theirs in zip(thinned, exact, strict=True):
            assert np.allclose(np.diag(ours), np.diag(theirs), rtol=1e-12)
        value = stats.pooled_energy_distance(*exact)
        assert stats.pooled_energy_distance(*thinned) == pytest.approx(value, rel=0.03)
        if weights is None:  # every sample once: the thinned path is the exact one
            assert stats.pooled_energy_distance(*every) == pytest.approx(value, rel=1e-9)


def test_noise_scale_matches_the_excess_variance_and_is_zero_when_narrower():
    torch.manual_seed(0)
    scale = torch.tensor([[0.5, 2.0], [1.0, 0.1]])
    reference = torch.randn(4000, 6, 2, 2)
    refined = reference * torch.sqrt(1 + scale**2)
    assert torch.allclose(stats.noise_scale(refined, reference), scale, rtol=0.1, atol=0.05)
    assert (stats.noise_scale(reference, refined) == 0).all()


def test_score_of_a_shifted_forecast_is_worse_and_the_context_cancels_per_window():
    torch.manual_seed(0)
    windows = torch.randn(6, 10, 4).cumsum(1)
    good = windows[None, :, 3:] + 0.1 * torch.randn(50, 6, 7, 4)
    bad = good + 1.0
    ours, theirs = bench.score(good, None, windows, 2, 10), bench.score(bad, None, windows, 2, 10)
    for key in ("energy_score", "ed_future", "crps", "ade_median", "mae_best", "min_ade"):
        assert (theirs[key] > ours[key]).all(), key
    assert np.allclose(ours["apd"], theirs["apd"], rtol=1e-4)  # a shift keeps the spread
    assert np.allclose(ours["ed_window"], ours["ed_future"], rtol=1e-5)
    assert np.allclose(ours["ed_future"], 2 * ours["energy_score"], rtol=1e-5)


def test_claim_four_compares_the_last_steps_with_the_first():
    growing = np.array([[0.0, 0.0, 0.0, 0.0, -1.0, -1.0, -2.0, -2.0]])
    assert bench.early_late(growing)[0] == pytest.approx(-1.5)
    assert bench.early_late(-growing)[0] == pytest.approx(1.5)


def test_body_clips_split_into_disjoint_parts_with_enough_test_windows():
    from snfseq import data

    clips = data.mocap_clips()
    lengths = {c: len(s) for c, s in zip(clips, data.mocap_sequences(clips), strict=True)}
    train, val, test = bench.assign_clips(lengths, 24, 2)
    assert sorted(train + val + test) == sorted(clips)
    assert len(test) >= 2 and len(val) >= 2
    counts = [bench.window_count(lengths[c], 24, 2) for c in test]
    assert sum(counts) >= bench.MIN_TEST_WINDOWS and min(counts) >= bench.MIN_CLIP_WINDOWS


def test_the_examples_in_the_docstrings_run():
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    for module in (bench, stats):
        failed, tried = doctest.testmod(module, optionflags=flags)
        assert tried > 5 and failed == 0, module.__name__
