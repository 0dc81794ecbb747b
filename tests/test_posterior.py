"""Refinement towards targets with a meaning: observed coordinates and fixed distances as
likelihoods on the flow's own forecast (``Refinement(prior="flow")``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zuko

from snfseq import Refinement, energy, metrics, snf
from snfseq.flows import ConditionalFlow

CONTEXT = 8


def test_observed_energy_is_the_masked_gaussian_likelihood() -> None:
    torch.manual_seed(0)
    mask = torch.tensor([True, False, True, True])
    values = torch.tensor([1.0, float("nan"), -2.0, 0.5])
    noise = torch.tensor([0.5, 1.0, 2.0, 0.1])
    u = energy.Observed(mask, values, noise)
    x = torch.randn(7, 3, 4)
    observed = mask.nonzero().flatten()
    expected = 0.5 * (((x[..., observed] - values[observed]) / noise[observed]) ** 2).sum(-1)
    torch.testing.assert_close(u(x), expected)
    e, g = u.value_and_grad(x)
    e_auto, g_auto = energy.Potential(u.__call__).value_and_grad(x)
    torch.testing.assert_close(e, e_auto)
    torch.testing.assert_close(g, g_auto)
    assert bool((g[..., 1] == 0).all())  # the unobserved coordinate is free
    with pytest.raises(ValueError, match="NaN where the mask"):
        energy.Observed(torch.ones(4, dtype=torch.bool), values)
    with pytest.raises(ValueError, match="boolean"):
        energy.Observed(torch.ones(4), values)
    with pytest.raises(ValueError, match="positive"):
        energy.Observed(mask, values, noise=0.0)


def test_skeleton_distances_hold_on_real_motion_capture() -> None:
    pytest.importorskip("pybullet", reason="motion capture needs pybullet")
    from snfseq.data import MOCAP_BONES, load_mocap

    walk = torch.as_tensor(load_mocap("walk").values).flatten(1)  # [T, 45]
    first = walk[0].reshape(15, 3).numpy()
    lengths = torch.tensor([np.linalg.norm(first[i] - first[j]) for i, j in MOCAP_BONES])
    bones = energy.Distances(MOCAP_BONES, lengths, coords=3, scale=0.01)
    assert float(bones(walk).max()) < 1e-3  # every frame keeps the first frame's bones
    stretched = walk.clone()
    elbow, wrist = slice(7 * 3, 8 * 3), slice(8 * 3, 9 * 3)
    stretched[:, wrist] = walk[:, elbow] + 1.2 * (walk[:, wrist] - walk[:, elbow])  # +5 cm
    assert float(bones(stretched).min()) > 10.0
    # The energy's gradient (autograd) shortens the stretched bone: a step against it helps.
    _, grad = bones.value_and_grad(stretched)
    assert float(bones(stretched - 1e-5 * grad).max()) < float(bones(stretched).max())
    with pytest.raises(ValueError, match="one per pair"):
        energy.Distances(MOCAP_BONES, lengths[:3])
    with pytest.raises(ValueError, match="beyond"):
        energy.Distances([(0, 20)], torch.ones(1))(walk)


def _flow() -> ConditionalFlow:
    torch.manual_seed(3)
    flow = zuko.flows.MAF(2, transforms=3, hidden_features=(32, 32))
    with torch.no_grad():  # a skewed, correlated prior rather than a near-Gaussian one
        for parameter in flow.parameters():
            parameter.mul_(2.0)
    return ConditionalFlow.from_zuko(flow, 2, 0)


LIKELIHOOD = energy.Observed(torch.tensor([True, False]), torch.tensor([1.5, float("nan")]), 0.1)


def test_a_flow_prior_without_mcmc_weighs_by_the_likelihood_alone() -> None:
    flow = _flow()
    refinement = Refinement(prior="flow", steps=0, after=[flow.num_layers - 1])
    result = snf.sample(flow, LIKELIHOOD, refinement, num_samples=500)
    # Importance sampling from the prior: log w = -u(x) up to one constant.
    offset = result.log_weights + LIKELIHOOD(result.samples)
    assert float(offset.max() - offset.min()) < 1e-3


def test_posterior_estimates_under_a_flow_prior_are_unbiased() -> None:
    flow = _flow()
    with torch.no_grad():  # reference: plain importance sampling from the prior, 400k draws
        prior_draws, _ = flow.sample_from(torch.randn(400_000, 2))
        weights = torch.softmax(-LIKELIHOOD(prior_draws).double(), 0)
        reference = (weights[:, None] * prior_draws.double()).sum(0)
        reference_ess = float(1 / weights.square().sum())
    assert reference_ess > 20_000
    # Annealed in over three blocks with resampling between them (an SMC sampler).
    refinement = Refinement(
        kernel="mala", prior="flow", steps=8, step_size=0.05, lam=[0.25, 0.5, 1.0], resample=0.5
    )
    torch.manual_seed(4)
    result = snf.sample(flow, LIKELIHOOD, refinement, num_samples=20_000)
    w = result.weights.double()
    x = result.samples.double()
    estimate = (w[:, None] * x).sum(0)
    se = ((w[:, None] ** 2) * (x - estimate) ** 2).sum(0).sqrt()
    assert bool((se < 0.05).all())
    assert bool(((estimate - reference).abs() < 4 * se + 0.01).all()), (estimate, reference, se)
    # The samples themselves moved into the posterior (prior mean of x0: 0.76), and the
    # weights stay far more even than plain importance sampling's with as many draws.
    assert abs(float(x[:, 0].mean() - reference[0])) < 0.05
    assert float(result.ess) > 5 * reference_ess / 20


def _posterior(values: torch.Tensor) -> Refinement:
    """MALA in the flow's base space, the observations annealed in over 4 blocks, SMC."""
    return Refinement(
        kernel="mala",
        prior="flow",
        target=snf.Observations(values, noise=0.002),
        after=[-1] * 4,
        lam=[0.05, 0.2, 0.5, 1.0],
        steps=3,
        step_size=0.2,
        resample=0.5,
    )


def _score(fc, future: torch.Tensor, frames: slice, features: torch.Tensor) -> float:
    samples, truth = fc.samples[:, :, frames][..., features], future[:, frames][..., features]
    return float(metrics.energy_score(samples, truth, log_weights=fc.log_weights).mean())


def test_observed_keypoints_pin_the_posterior_forecast(trained_model, face_split) -> None:
    windows = face_split["test"][:8]
    context, future = windows[:, :CONTEXT], windows[:, CONTEXT : CONTEXT + 3]
    known = torch.zeros(20, dtype=torch.bool)
    known[:10] = True  # the first 5 keypoints (x, y) arrive; the other 5 do not
    values = torch.where(known, future, torch.full_like(future, float("nan")))
    refinement = _posterior(values)
    posterior = trained_model.forecast(context, 3, 64, refinement=refinement, seed=0)
    prior = trained_model.forecast(context, 3, 64, seed=0)
    every = slice(None)
    # The known keypoints sit at their observations (to about their noise); the weights
    # stay usable thanks to the annealing and resampling.
    assert _score(posterior, future, every, known) < 0.5 * _score(prior, future, every, known)
    assert float(posterior.ess.median()) > 0.1 * 64
    with pytest.raises(ValueError, match="cover 3 forecast steps"):
        trained_model.forecast(context, horizon=4, num_samples=4, refinement=refinement)


def test_a_copy_inside_a_step_keeps_its_own_condition_and_target(trained_model, face_split) -> None:
    """Resampling before a block copies rows that each have their own recurrent state and
    last frame: the copies must carry them, or their weights come out inconsistent."""
    windows = face_split["test"][:4]
    context, future = windows[:, :CONTEXT], windows[:, CONTEXT : CONTEXT + 2]
    values = future.clone()
    values[:, 0] = float("nan")  # the second frame is known: by then every row has its state
    refinement = Refinement(
        prior="flow",
        target=snf.Observations(values, noise=0.002),
        steps=0,
        after=[-1],
        lam=[1.0],
        resample=1.0,  # resample before the block whenever the weights are not all equal
    )
    fc = trained_model.forecast(context, 2, 32, refinement=refinement, seed=0)
    assert fc.ancestors is not None
    # Importance sampling resampled by its own weights: every copy's weight is the same.
    last = fc.step_log_weights[..., -1]
    spread = last.max(0).values - last.min(0).values
    assert float(spread.max()) < 1e-3, spread


def test_posterior_configuration_errors() -> None:
    with pytest.raises(ValueError, match="prior must be"):
        Refinement(prior="data")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Tensor\\[B, H, D\\]"):
        snf.Observations(torch.zeros(3, 4), noise=1.0)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        Refinement(steps=-1)
