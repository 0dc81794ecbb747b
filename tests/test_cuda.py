"""The CUDA path: everything that touches tensors runs on a GPU and agrees with the CPU.

Skipped where no GPU is present (CI has none); `benchmarks/gpu.sh` runs it on a GPU machine.
``SNFSEQ_TEST_DEVICE=cpu`` runs the same checks on the CPU (to check the tests themselves).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from snfseq import Refinement, SequenceFlow, diagnostics, energy, kernels, metrics, snf, weights
from snfseq.flows import build_flow

CUDA = torch.device(os.environ.get("SNFSEQ_TEST_DEVICE", "cuda"))
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        CUDA.type == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device"
    ),
]


@pytest.fixture(scope="module")
def cuda_model():
    torch.manual_seed(0)
    windows = torch.randn(96, 12, 6).cumsum(1)
    model = SequenceFlow(features=6, hidden=16, layers=2, transforms=3, flow_hidden=(16,))
    model.fit(windows, context=6, epochs=3, progress=False, device=CUDA)
    return model, windows


REFINEMENTS = {
    "none": None,
    "paper": Refinement.paper(),
    "faithful": Refinement.paper(faithful=True),
    "mala": Refinement(kernel="mala", steps=3),
    "hmc": Refinement(kernel="hmc"),
    "pullback": Refinement(kernel="mala", intermediate="pullback"),
}


@pytest.mark.parametrize("name", list(REFINEMENTS))
@pytest.mark.parametrize("feedback", ["sample", "mean"])
def test_forecast_runs_on_the_gpu(cuda_model, name, feedback):
    model, windows = cuda_model
    assert model.device.type == CUDA.type
    fc = model.forecast(
        windows[:3, :6],
        horizon=4,
        num_samples=32,
        refinement=REFINEMENTS[name],
        feedback=feedback,
        seed=0,
        record_trace=name != "none",
    )
    assert fc.samples.device.type == CUDA.type and fc.samples.shape == (32, 3, 4, 6)
    assert torch.isfinite(fc.samples).all()
    if name in ("none", "faithful"):
        assert fc.log_weights is None
    else:
        assert torch.isfinite(fc.log_weights).all() and fc.ess.device.type == CUDA.type
    again = model.forecast(
        windows[:3, :6],
        horizon=4,
        num_samples=32,
        refinement=REFINEMENTS[name],
        feedback=feedback,
        seed=0,
    )
    torch.testing.assert_close(fc.samples, again.samples, rtol=0, atol=0)


def test_gpu_and_cpu_agree_on_the_likelihood_and_the_mean_path(cuda_model, tmp_path):
    model, windows = cuda_model
    cpu = SequenceFlow.load(model.save(tmp_path / "m.pt"))
    assert cpu.device.type == "cpu"  # a checkpoint loads on the CPU unless told otherwise
    torch.testing.assert_close(
        model.nll(windows[:8], 6).cpu(), cpu.nll(windows[:8], 6), rtol=1e-4, atol=1e-4
    )
    back = SequenceFlow.load(tmp_path / "m.pt", map_location=CUDA)
    assert back.device.type == CUDA.type
    gpu_fc = model.forecast(windows[:2, :6], horizon=3, num_samples=4000, seed=1)
    cpu_fc = cpu.forecast(windows[:2, :6], horizon=3, num_samples=4000, seed=1)
    # Different random streams, same distribution: means agree within Monte Carlo error.
    spread = cpu_fc.samples.std(0)
    gap = (gpu_fc.mean.cpu() - cpu_fc.mean).abs()
    assert (gap < 5 * spread / 4000**0.5 + 1e-4).all()


def test_diagnostic_chains_on_the_gpu_are_the_forecasts_chains(cuda_model):
    model, windows = cuda_model
    refinement = Refinement(kernel="mala", steps=3, after=[0, 2])
    fc = model.forecast(
        windows[:2, :6], horizon=1, num_samples=5, refinement=refinement, record_trace=True, seed=3
    )
    tree = diagnostics.run_chains(
        model, windows[:2, :6], refinement, num_chains=5, num_draws=3, seed=3
    )
    expected = fc.trace.states[0].permute(2, 1, 0, 3, 4).cpu().numpy()
    np.testing.assert_array_equal(tree["posterior"]["y"].values, expected)
    assert (
        diagnostics.summary(
            diagnostics.run_chains(model, windows[:2, :6], refinement, num_draws=50, seed=0)
        )
        .table["r_hat_max"]
        .notna()
        .all()
    )


@pytest.mark.parametrize("kernel", [kernels.RandomWalkMetropolis, kernels.MALA, kernels.HMC])
def test_kernels_keep_a_gaussian_on_the_gpu(kernel):
    torch.manual_seed(0)
    target = energy.Gaussian(torch.tensor([1.0, -2.0, 0.5], device=CUDA), 0.7)
    z = target.loc + 0.7 * torch.randn(20000, 3, device=CUDA)
    k = kernel(target, step_size=0.3, adapt_step_size=False)
    chain = snf.run_chain(k, target, z, 20)
    final = chain.final
    assert final.device.type == CUDA.type
    torch.testing.assert_close(final.mean(0), target.loc, atol=0.03, rtol=0)
    torch.testing.assert_close(final.std(0), torch.full((3,), 0.7, device=CUDA), atol=0.03, rtol=0)


def test_snf_sample_weights_and_metrics_on_the_gpu():
    torch.manual_seed(0)
    flow = build_flow("realnvp", features=2, condition_features=3, transforms=2, hidden=(16,)).to(
        CUDA
    )
    context = torch.randn(4, 3, device=CUDA)
    result = snf.sample(
        flow, energy.Gaussian(torch.ones(2, device=CUDA)), Refinement(), 64, condition=context
    )
    assert result.samples.device.type == CUDA.type and result.ess.shape == (4,)
    assert weights.resample(result.log_weights).device.type == CUDA.type
    samples = torch.randn(50, 4, 5, 3, device=CUDA)
    obs = torch.randn(4, 5, 3, device=CUDA)
    for name, value in {
        "energy_score": metrics.energy_score(samples, obs),
        "crps": metrics.crps(samples, obs),
        "variogram_score": metrics.variogram_score(samples, obs),
        "apd": metrics.apd(samples),
        "min_ade": metrics.min_ade(samples, obs, coords=3),
    }.items():
        assert value.device.type == CUDA.type, name
        assert torch.isfinite(value).all(), name
    torch.testing.assert_close(
        metrics.energy_score(samples, obs).cpu(),
        metrics.energy_score(samples.cpu(), obs.cpu()),
        rtol=1e-4,
        atol=1e-5,
    )


def test_posterior_forecast_and_jacobi_sampling_run_on_the_gpu(cuda_model):
    model, windows = cuda_model
    future = windows[:3, 6:10]
    values = future.clone()
    values[..., 3:] = float("nan")  # half of each frame known
    posterior = Refinement(
        kernel="mala",
        prior="flow",
        target=snf.Observations(values, noise=0.05),
        after=[-1] * 3,
        lam=[0.1, 0.4, 1.0],
        resample=0.5,
    )
    fc = model.forecast(windows[:3, :6], horizon=4, num_samples=32, refinement=posterior, seed=0)
    assert fc.samples.device.type == CUDA.type and torch.isfinite(fc.log_weights).all()
    torch.manual_seed(0)
    flow = build_flow("nsf", features=6, condition_features=2, transforms=2, hidden=(16,)).to(CUDA)
    z, c = torch.randn(64, 6, device=CUDA), torch.randn(64, 2, device=CUDA)
    fast, _ = flow.sample_from(z, c)
    flow.inverse_tolerance = 0.0
    exact, _ = flow.sample_from(z, c)
    torch.testing.assert_close(fast, exact, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["none", "mala", "hmc"])
def test_a_graphed_forecast_samples_what_the_eager_one_samples(cuda_model, name):
    if CUDA.type != "cuda":
        pytest.skip("CUDA graphs need a GPU")
    model, windows = cuda_model
    refinement, context, samples = REFINEMENTS[name], windows[:2, :6], 4000
    graphed = model.forecast(context, 4, samples, refinement, seed=0, cuda_graph=True)
    again = model.forecast(context, 4, samples, refinement, seed=0, cuda_graph=True)
    eager = model.forecast(context, 4, samples, refinement, seed=0)
    assert torch.equal(graphed.samples, again.samples)  # seeded replays repeat
    assert not torch.equal(graphed.samples[:, :, 1:], graphed.samples[:, :, :-1])  # it moves
    mean, spread = eager.samples.mean(0), eager.samples.std(0)
    error = (graphed.samples.mean(0) - mean).abs() / (spread * (2 / samples) ** 0.5)
    assert float(error.max()) < 5.0  # 48 coordinates: a 5-sigma miss is not chance
    ratio = graphed.samples.std(0) / spread
    assert float((ratio - 1).abs().max()) < 0.15
    if refinement is not None:
        assert graphed.log_weights is not None and torch.isfinite(graphed.log_weights).all()
