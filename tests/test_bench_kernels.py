"""benchmarks/bench_kernels.py: its quick run, snfseq's kernels and BlackJAX's side by side.

The quick run (1,000 chains) runs once for the module. Every vectorized kernel's chains start
in the target and must end in it: the end states' means and standard deviations lie within
five sampling sigmas of the Gaussian's exact ones. BlackJAX repeats snfseq's runs from the same
states with the same per-chain step sizes, so a correctly wired BlackJAX kernel also accepts as
often as snfseq's; a miswired one (say ``blackjax.rmh`` handed a step instead of a proposal)
fails one check or the other.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any

import pytest
import torch
from benchmark_scripts import load_benchmark

bench = load_benchmark("bench_kernels")
peer = sys.modules["blackjax_peer"]

HAS_BLACKJAX = all(importlib.util.find_spec(name) for name in ("jax", "blackjax"))
GAUSSIAN_KERNELS = {"RWM", "MALA", "HMC L=10"}


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """The quick run's report (as written to JSON) and Markdown."""
    out = tmp_path_factory.mktemp("kernels")
    threads = torch.get_num_threads()
    try:
        bench.main(["--quick", "--threads", "1", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    report = json.loads((out / "kernels_quick.json").read_text())
    return report, (out / "kernels_quick.md").read_text()


def _gaussian_pairs(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        pair["kernel"]: pair
        for pair in report["blackjax"]["pairs"]
        if pair["target"].startswith("Gaussian")
    }


def test_snfseq_kernels_keep_the_gaussian(quick: tuple[dict[str, Any], str]) -> None:
    report, markdown = quick
    pairs = _gaussian_pairs(report)
    assert set(pairs) == GAUSSIAN_KERNELS
    for pair in pairs.values():
        row = pair["snfseq"]
        assert row["sampler"] == f"snfseq {pair['kernel']}"
        assert row["chain_steps_per_s"] > 0 and row["ess_min"] > 0
        tolerance = row["moment_tolerance"]
        assert row["mean_error_sd"] < tolerance["mean_error_sd"], pair["kernel"]
        assert row["sd_error"] < tolerance["sd_error"], pair["kernel"]
        assert row["moments_ok"] is True
    assert "## snfseq against BlackJAX" in markdown


@pytest.mark.skipif(not HAS_BLACKJAX, reason="jax and blackjax are in the `bench` extra")
def test_blackjax_kernels_match_snfseq(quick: tuple[dict[str, Any], str]) -> None:
    report, markdown = quick
    assert report["blackjax"]["available"] is True
    pairs = _gaussian_pairs(report)
    assert set(pairs) == GAUSSIAN_KERNELS
    for kernel, pair in pairs.items():
        row, snfseq = pair["blackjax"], pair["snfseq"]
        assert row["sampler"] == f"BlackJAX {kernel}"
        assert (row["chains"], row["steps"]) == (snfseq["chains"], snfseq["steps"])
        assert row["step_size"] == pytest.approx(snfseq["step_size"])
        tolerance = row["moment_tolerance"]
        assert row["mean_error_sd"] < tolerance["mean_error_sd"], kernel
        assert row["sd_error"] < tolerance["sd_error"], kernel
        # Same kernel, same states, same step sizes: the rates differ only by chance, by
        # about sqrt(p (1 - p) / (chains x steps)) < 0.01.
        assert abs(row["acceptance"] - snfseq["acceptance"]) < 0.03, kernel
        assert row["compile_s"] > 0 and pair["snfseq_over_blackjax"]["chain_steps_per_s"] > 0
    assert f"JAX threads: {report['blackjax']['threads']}." in markdown


@pytest.mark.skipif(not HAS_BLACKJAX, reason="jax and blackjax are in the `bench` extra")
@pytest.mark.parametrize("name", ["gaussian", "funnel"])
def test_both_libraries_see_the_same_target(name: str) -> None:
    """snfseq's closed-form energy and gradient against BlackJAX's log-density (the
    Gaussian's closed-form ``custom_jvp``, the funnel's autodiff), at points of the target."""
    import jax

    target = bench.CorrelatedGaussian(60) if name == "gaussian" else bench.NealFunnel(10)
    loaded = peer.load(1)
    assert isinstance(loaded, peer.Peer)
    points = target.sample(5, torch.Generator().manual_seed(0)).float()
    energy, grad = target.value_and_grad(points)
    logdensity = jax.jit(jax.vmap(jax.value_and_grad(target.jax_logdensity(loaded))))
    log_p, grad_log_p = logdensity(points.numpy())
    # Log-densities up to a constant: compare differences between points.
    assert torch.tensor(log_p - log_p[0]) == pytest.approx(-(energy - energy[0]), rel=1e-4)
    assert torch.tensor(grad_log_p) == pytest.approx(-grad, rel=1e-4, abs=1e-4)


def test_report_says_why_blackjax_was_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "blackjax", None)  # import blackjax raises ImportError
    reason = peer.load(1)
    assert isinstance(reason, str) and "bench" in reason
    lines = peer.markdown(peer.section(reason, []))
    assert f"BlackJAX skipped: {reason}." in lines


def test_moment_check_fails_chains_off_the_target() -> None:
    target = bench.CorrelatedGaussian(60)
    position = target.sample(1_000, torch.Generator().manual_seed(0)).numpy()
    assert peer.moments(position, target)["moments_ok"] is True
    shifted = position + 0.5 * target.marginals()[1]  # every mean off by half an sd
    assert peer.moments(shifted, target)["moments_ok"] is False
    squeezed = target.marginals()[0] + 0.8 * (position - target.marginals()[0])
    assert peer.moments(squeezed, target)["moments_ok"] is False
