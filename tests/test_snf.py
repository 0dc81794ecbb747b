"""Stochastic refinement: published-algorithm equivalence, path weights, traces."""

from __future__ import annotations

import math

import pytest
import torch
import zuko

from snfseq import Refinement, energy, snf
from snfseq.flows import build_flow

CONTEXT = 8


def _published_forecast(model, context, horizon, num_samples, seed, faithful):
    """A plain, separate implementation of the published GRU-SNF sampler.

    Per forecast step: base noise, then after every coupling layer 2 random-walk proposals of
    step 0.35 on E_k(y) = (1 - lam_k) |y|^2 / 2 + lam_k |yhat - y|^2, lam_k = k / (K - 1).
    faithful=False: one accept per sample, every sample its own recurrent state.
    faithful=True: the published code's per-coordinate accept, state fed the sample mean.
    """
    torch.manual_seed(seed)
    flow, norm = model.flow, model.normalizer
    K = flow.num_layers
    with torch.no_grad():
        loc = norm.location(context)
        x = norm.normalize(context, loc)
        batch = x.shape[0]
        out, state = model._encode(x, None)
        if not faithful:
            state = state.repeat_interleave(1, 1).unsqueeze(1).expand(-1, num_samples, -1, -1)
            state = state.reshape(state.shape[0], num_samples * batch, -1)
        h = out[:, -1].repeat(num_samples, 1)
        previous = x[:, -1].repeat(num_samples, 1)
        frames = []
        for _ in range(horizon):
            c = model.condition(h)
            yhat = model.point_head(h)
            y = torch.randn(num_samples * batch, model.features)
            for k in range(K):
                y, _ = flow.inverse_layer(k, y, c)
                lam = k / (K - 1)

                def energy_k(v):
                    return (1 - lam) * 0.5 * v.square().sum(-1) + lam * (yhat - v).square().sum(-1)

                for _ in range(2):
                    proposal = y + 0.35 * torch.randn_like(y)
                    if faithful:
                        u = torch.rand_like(y)
                        accept = u.log() < (energy_k(y) - energy_k(proposal)).unsqueeze(-1)
                        y = torch.where(accept, proposal, y)
                    else:
                        log_u = -torch.empty(y.shape[0]).exponential_()
                        accept = log_u < energy_k(y) - energy_k(proposal)
                        y = torch.where(accept.unsqueeze(-1), proposal, y)
            frame = previous + y * norm.delta_scale
            frames.append(frame)
            if faithful:
                fed = frame.reshape(num_samples, batch, -1).mean(0)
                out, state = model._encode(fed.unsqueeze(1), previous[:batch], state)
                h = out[:, 0].repeat(num_samples, 1)
                previous = fed.repeat(num_samples, 1)
            else:
                out, state = model._encode(frame.unsqueeze(1), previous, state)
                h, previous = out[:, 0], frame
        paths = torch.stack(frames, 1).reshape(num_samples, batch, horizon, -1)
        return norm.denormalize(paths, loc)


@pytest.mark.parametrize("faithful", [False, True])
def test_paper_refinement_matches_a_plain_implementation_draw_for_draw(
    trained_model, face_split, faithful
) -> None:
    context = face_split["test"][:3, :CONTEXT]
    fc = trained_model.forecast(
        context, horizon=4, num_samples=20, refinement=Refinement.paper(faithful=faithful), seed=11
    )
    expected = _published_forecast(trained_model, context, 4, 20, seed=11, faithful=faithful)
    torch.testing.assert_close(fc.samples, expected, atol=1e-5, rtol=1e-5)
    assert (fc.log_weights is None) == faithful
    # The refinement moves the samples: they differ from plain GRU-NF with the same seed.
    plain = trained_model.forecast(context, horizon=4, num_samples=20, seed=11)
    assert not torch.allclose(plain.samples, fc.samples)


def _double_well(x: torch.Tensor) -> torch.Tensor:
    """Asymmetric 2-D double well (Wu, Koehler & Noe 2020); the left well is deeper."""
    return 0.25 * x[..., 0] ** 4 - 3.0 * x[..., 0] ** 2 + x[..., 0] + 0.5 * x[..., 1] ** 2


def _exact_mean_x1() -> float:
    grid = torch.linspace(-7, 7, 20001, dtype=torch.float64)
    density = torch.exp(-(0.25 * grid**4 - 3 * grid**2 + grid))
    return float((density * grid).sum() / density.sum())


@pytest.mark.parametrize(
    "refinement",
    [
        None,
        Refinement(kernel="rwm", step_size=0.5, steps=10),
        Refinement(kernel="mala", step_size=0.05, steps=10),
        Refinement(kernel="mala", step_size=0.02, steps=10, adjusted=False),
        Refinement(kernel="hmc", step_size=0.1, steps=3),
    ],
    ids=["flow-only", "rwm", "mala", "ula", "hmc"],
)
def test_weighted_estimates_on_a_double_well_are_unbiased(refinement) -> None:
    torch.manual_seed(0)
    flow = zuko.flows.RealNVP(2, transforms=3, hidden_features=(32, 32))
    result = snf.sample(flow, energy.Potential(_double_well), refinement, num_samples=20_000)
    x1 = result.samples[:, 0].double()
    weights = result.weights.double()
    weighted = float((weights * x1).sum())
    # Delta-method standard error of a self-normalised importance estimate.
    se = math.sqrt(float((weights**2 * (x1 - weighted) ** 2).sum()))
    exact = _exact_mean_x1()  # -2.441
    assert se < 0.05
    assert abs(weighted - exact) < 4 * se, (weighted, se, exact)
    # Without weights the samples sit between the wells: visibly biased.
    assert abs(float(x1.mean()) - exact) > 1.0
    assert 1 < float(result.ess) < 20_000


def test_log_weights_without_blocks_are_target_over_flow_density() -> None:
    torch.manual_seed(1)
    flow = build_flow("realnvp", features=3, context=2, transforms=2, hidden=(16,))
    target = energy.Gaussian(torch.tensor([1.0, 0.0, -1.0]), 0.7)
    context = torch.randn(5, 2)
    result = snf.sample(flow, target, None, num_samples=4, context=context)
    assert result.samples.shape == (4, 5, 3) and result.log_weights.shape == (4, 5)
    x = result.samples
    log_q = flow.log_prob(x, context.expand(4, 5, 2))
    expected = -target(x) - log_q - 1.5 * math.log(2 * math.pi)
    torch.testing.assert_close(result.log_weights, expected, atol=1e-4, rtol=1e-4)


def test_pullback_energy_at_the_last_layer_is_the_flows_own_energy() -> None:
    torch.manual_seed(2)
    flow = build_flow("realnvp", features=3, context=2, transforms=3, hidden=(16,))
    c, x = torch.randn(6, 2), torch.randn(6, 3)
    refinement = Refinement(intermediate="pullback")
    block = refinement.block_energy(flow, flow.num_layers - 1, c, energy.StandardNormal(), 0.0)
    expected = -flow.log_prob(x, c) - 1.5 * math.log(2 * math.pi)
    torch.testing.assert_close(block(x), expected, atol=1e-5, rtol=1e-5)


def test_trace_is_recorded_on_request_only(trained_model, face_split) -> None:
    context = face_split["test"][:2, :CONTEXT]
    refinement = Refinement(kernel="mala", steps=3, after=[0, 2])
    quiet = trained_model.forecast(context, horizon=2, num_samples=5, refinement=refinement)
    assert quiet.trace is None
    fc = trained_model.forecast(
        context, horizon=2, num_samples=5, refinement=refinement, record_trace=True
    )
    trace = fc.trace
    assert trace.states.shape == (2, 2, 3, 5, 2, 20)  # time, block, step, sample, series, D
    assert trace.energies.shape == trace.accepted.shape == (2, 2, 3, 5, 2)
    assert trace.blocks == [0, 2] and trace.lam.tolist() == [0.0, 1.0]
    assert trace.acceptance.shape == (2,)
    assert fc.log_weights.shape == (5, 2) and fc.step_log_weights.shape == (5, 2, 2)
    assert fc.ess.shape == (2,) and fc.step_ess.shape == (2, 2)


def test_custom_target_energy_drives_the_refinement(trained_model, face_split) -> None:
    def target(yhat: torch.Tensor) -> energy.Energy:
        return energy.Gaussian(yhat, 0.5) + 0.1 * energy.StandardNormal()

    refinement = Refinement(kernel="mala", target=target)
    yhat = torch.randn(3, 20)
    y = torch.randn(3, 20)
    expected = 0.5 * ((y - yhat) / 0.5).square().sum(-1) + 0.05 * y.square().sum(-1)
    torch.testing.assert_close(refinement.target_energy(yhat)(y), expected)
    context = face_split["test"][:2, :CONTEXT]
    fc = trained_model.forecast(context, horizon=2, num_samples=6, refinement=refinement, seed=0)
    assert fc.samples.shape == (6, 2, 2, 20) and torch.isfinite(fc.log_weights).all()


def test_refinement_configuration_errors() -> None:
    with pytest.raises(ValueError, match="target must be 'gaussian', 'paper' or a callable"):
        Refinement(target="flow")
    with pytest.raises(ValueError, match="kernel must be one of"):
        Refinement(kernel="nuts")
    with pytest.raises(ValueError, match="steps must be >= 1"):
        Refinement(steps=0)
    with pytest.raises(ValueError, match="faithful=True reproduces"):
        Refinement(kernel="mala", faithful=True)
    with pytest.raises(ValueError, match="outside the flow's 3 layers"):
        Refinement(after=[5]).blocks(3)
    with pytest.raises(ValueError, match="lam has 2 values for 3 blocks"):
        Refinement(lam=[0.0, 1.0]).lambdas(3)
    assert Refinement.paper().lambdas(5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
