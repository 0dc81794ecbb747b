"""Stochastic refinement: published-algorithm equivalence, path weights, traces."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import zuko

from snfseq import Refinement, diagnostics, energy, snf, weights
from snfseq.flows import build_flow

CONTEXT = 8


def _published_forecast(model, context, horizon, num_samples, seed, faithful, feed_mean):
    """A plain, separate implementation of the published GRU-SNF sampler.

    Per forecast step: base noise, then after every coupling layer 2 random-walk proposals of
    step 0.35 on E_k(y) = (1 - lam_k) |y|^2 / 2 + lam_k |yhat - y|^2, lam_k = k / (K - 1).
    faithful=False: one accept per sample; faithful=True: the published per-coordinate accept.
    feed_mean=False: every sample its own recurrent state; True: the state fed the sample mean.
    """
    torch.manual_seed(seed)
    flow, norm = model.flow, model.normalizer
    K = flow.num_layers
    with torch.no_grad():
        loc = norm.location(context)
        x = norm.normalize(context, loc)
        batch = x.shape[0]
        out, state = model._encode(x, None)
        if not feed_mean:
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
            if feed_mean:
                fed = frame.reshape(num_samples, batch, -1).mean(0)
                out, state = model._encode(fed.unsqueeze(1), previous[:batch], state)
                h = out[:, 0].repeat(num_samples, 1)
                previous = fed.repeat(num_samples, 1)
            else:
                out, state = model._encode(frame.unsqueeze(1), previous, state)
                h, previous = out[:, 0], frame
        paths = torch.stack(frames, 1).reshape(num_samples, batch, horizon, -1)
        return norm.denormalize(paths, loc)


@pytest.mark.parametrize(
    ("faithful", "feedback"),
    [(False, "sample"), (True, "mean"), (True, "sample"), (False, "mean")],
    ids=["corrected", "published-code", "per-coordinate-only", "mean-fed-only"],
)
def test_paper_refinement_matches_a_plain_implementation_draw_for_draw(
    trained_model, face_split, faithful, feedback
) -> None:
    context = face_split["test"][:3, :CONTEXT]
    refinement = Refinement.paper(faithful=faithful)
    fc = trained_model.forecast(
        context, horizon=4, num_samples=20, refinement=refinement, feedback=feedback, seed=11
    )
    expected = _published_forecast(
        trained_model, context, 4, 20, seed=11, faithful=faithful, feed_mean=feedback == "mean"
    )
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
        Refinement(kernel="rwm", step_size=0.5, steps=10, resample=0.5),
    ],
    ids=["flow-only", "rwm", "mala", "ula", "hmc", "rwm-smc"],
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
    if refinement is not None and refinement.resample is not None:
        # Resampled between blocks (an SMC sampler): the samples themselves are now in the
        # wells (unweighted mean within 0.05), and the weights stay nearly even.
        assert abs(float(x1.mean()) - exact) < 0.05 and float(result.ess) > 10_000
        assert result.ancestors is not None and result.ancestors.shape == (20_000,)
        return
    # Without weights the samples sit between the wells: visibly biased.
    assert abs(float(x1.mean()) - exact) > 1.0
    assert 1 < float(result.ess) < 20_000


def test_log_weights_without_blocks_are_target_over_flow_density() -> None:
    torch.manual_seed(1)
    flow = build_flow("realnvp", features=3, condition_features=2, transforms=2, hidden=(16,))
    target = energy.Gaussian(torch.tensor([1.0, 0.0, -1.0]), 0.7)
    context = torch.randn(5, 2)
    result = snf.sample(flow, target, None, num_samples=4, condition=context)
    assert result.samples.shape == (4, 5, 3) and result.log_weights.shape == (4, 5)
    x = result.samples
    log_q = flow.log_prob(x, context.expand(4, 5, 2))
    expected = -target(x) - log_q - 1.5 * math.log(2 * math.pi)
    torch.testing.assert_close(result.log_weights, expected, atol=1e-4, rtol=1e-4)


def test_pullback_energy_at_the_last_layer_is_the_flows_own_energy() -> None:
    torch.manual_seed(2)
    flow = build_flow("realnvp", features=3, condition_features=2, transforms=3, hidden=(16,))
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


def test_a_target_written_in_data_units_drives_the_refinement(trained_model, face_split) -> None:
    """A step-aware target built from ForecastStep, in data units, pulls the samples to it."""
    context = face_split["test"][:2, :CONTEXT]
    anchor = context[:, -1] + 0.01  # data units, one anchor per series
    seen = []

    def target(step: snf.ForecastStep) -> energy.Energy:
        seen.append(step)
        return step.to_data.pull_back(energy.Gaussian(anchor[step.series], 0.005))

    refinement = Refinement(kernel="hmc", target=target, after=[2], steps=10, step_size=0.2)
    fc = trained_model.forecast(context, horizon=3, num_samples=50, refinement=refinement, seed=0)
    plain = trained_model.forecast(context, horizon=3, num_samples=50, seed=0)
    # Every step built its target from its own context object.
    assert [step.step for step in seen] == [0, 1, 2]
    assert seen[0].batch_shape == (50, 2) and seen[0].series.tolist()[:4] == [0, 1, 0, 1]
    torch.testing.assert_close(seen[0].previous[:2], context[:, -1])
    y = torch.randn(100, 20)
    torch.testing.assert_close(
        seen[0].to_data.to_flow(seen[0].to_data.to_data(y)), y, atol=1e-4, rtol=1e-4
    )
    # The refined first frame sits by the anchor; plain GRU-NF's does not.
    refined = (fc.samples[:, :, 0] - anchor).norm(dim=-1).mean()
    unrefined = (plain.samples[:, :, 0] - anchor).norm(dim=-1).mean()
    assert refined < 0.5 * unrefined, (refined, unrefined)
    assert torch.isfinite(fc.log_weights).all()


class CountingGaussian(energy.Gaussian):
    """A Gaussian that counts how often its value and gradient are evaluated."""

    calls = 0

    def _value_and_grad(self, x):
        CountingGaussian.calls += 1
        return super()._value_and_grad(x)


@pytest.mark.parametrize(("kernel", "steps", "most"), [("mala", 3, 4), ("hmc", 2, 2 * 5 + 1)])
def test_a_block_reuses_the_gradient_between_transitions(kernel, steps, most) -> None:
    """MALA with M steps evaluates energy + gradient M + 1 times a block, not 2 M."""
    torch.manual_seed(3)
    flow = build_flow("realnvp", features=3, transforms=2, hidden=(8,))
    refinement = Refinement(kernel=kernel, steps=steps, after=[1], lam=[1.0])
    target = CountingGaussian(torch.zeros(3))
    CountingGaussian.calls = 0
    refinement.run(flow, torch.randn(5, 3), target=target)
    assert CountingGaussian.calls == most


def test_resampled_paths_carry_their_histories_and_ancestry(trained_model, face_split) -> None:
    """A refinement that resamples hands the model ancestor rows; histories follow them."""

    class Resampling(Refinement):
        def run(self, flow, z, c=None, **options):
            result = super().run(flow, z, c, **options)
            num_samples, batch = options["batch_shape"]
            picks = weights.resample(result.log_weight.reshape(num_samples, batch))
            rows = picks * batch + torch.arange(batch)  # ancestor sample s -> row s * B + b
            result.ancestors = rows.reshape(-1)
            result.y = result.y[result.ancestors]
            result.log_weight = torch.zeros_like(result.log_weight)
            return result

    context = face_split["test"][:2, :CONTEXT]
    fc = trained_model.forecast(
        context,
        horizon=3,
        num_samples=8,
        refinement=Resampling(kernel="mala"),
        seed=0,
        record_trace=True,
    )
    assert fc.ancestors.shape == (8, 2, 3) and fc.ancestors.dtype == torch.long
    ancestors = diagnostics.to_datatree(fc)["sample_stats"]["ancestor"]
    assert ancestors.dims == ("chain", "series", "time")
    np.testing.assert_array_equal(ancestors.values, fc.ancestors.numpy())
    assert fc.ancestors.min() >= 0 and fc.ancestors.max() < 8
    # A path copied at step h has its ancestor's earlier frames: copies share their history.
    for h in range(1, 3):
        for b in range(2):
            for s in range(8):
                twin = (fc.ancestors[:, b, h] == fc.ancestors[s, b, h]).nonzero().flatten()
                torch.testing.assert_close(
                    fc.samples[twin, b, :h], fc.samples[s, b, :h].expand(len(twin), -1, -1)
                )


def test_refinement_configuration_errors() -> None:
    with pytest.raises(ValueError, match="target must be 'gaussian', 'paper' or a callable"):
        Refinement(target="flow")
    with pytest.raises(ValueError, match="kernel must be one of"):
        Refinement(kernel="nuts")
    with pytest.raises(ValueError, match="steps must be >= 0"):
        Refinement(steps=-1)
    assert Refinement.paper(faithful=True).faithful and not Refinement.paper().faithful
    with pytest.raises(ValueError, match="outside the flow's 3 layers"):
        Refinement(after=[5]).blocks(3)
    with pytest.raises(ValueError, match="lam has 2 values for 3 blocks"):
        Refinement(lam=[0.0, 1.0]).lambdas(3)
    assert Refinement.paper().lambdas(5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
