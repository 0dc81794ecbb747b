"""Resampling over the horizon (``Refinement(resample=...)``): path weights that do not
collapse, estimates that stay unbiased, series that never mix."""

from __future__ import annotations

import warnings

import pytest
import torch

from snfseq import Refinement, SequenceFlow


@pytest.fixture(scope="module")
def model() -> SequenceFlow:
    torch.manual_seed(0)
    windows = torch.randn(64, 12, 3).cumsum(1)
    model = SequenceFlow(features=3, hidden=8, layers=1, transforms=2, flow_hidden=(8,))
    model.fit(windows, context=6, epochs=2, progress=False, seed=0)
    return model


@pytest.fixture(scope="module")
def contexts() -> torch.Tensor:
    """Two series a hundred apart: a path copied across series would show."""
    torch.manual_seed(1)
    first = torch.randn(1, 6, 3).cumsum(1)
    return torch.cat([first, first + 100])


def _forecast(model, contexts, resample, seed, samples=4000, scale=1.0):
    refinement = Refinement(
        kernel="mala", step_size=0.3, steps=2, target_scale=scale, resample=resample
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return model.forecast(
            contexts, horizon=4, num_samples=samples, refinement=refinement, seed=seed
        )


def test_resampled_weights_restart_at_every_resampling_and_series_never_mix(
    model, contexts
) -> None:
    plain = _forecast(model, contexts, None, seed=0, samples=500, scale=0.3)
    always = _forecast(model, contexts, 1.0, seed=0, samples=500, scale=0.3)
    assert plain.ancestors is None and always.ancestors is not None
    # Resampled before every step: only the last step's increment is left in the weights.
    rest = always.log_weights - always.step_log_weights[..., -1]
    assert torch.allclose(rest, rest[:1].expand_as(rest), atol=1e-4)
    assert float(always.ess.min()) > 4 * float(plain.ess.max())
    assert bool((always.samples[:, 1] > 50).all()) and bool((always.samples[:, 0] < 50).all())
    assert always.ancestors.shape == (500, 2, 4) and int(always.ancestors.max()) < 500


def test_weighted_estimates_keep_their_target_with_resampling(model, contexts) -> None:
    """Self-normalised estimates of the last frame's mean agree with and without resampling
    (three seeds of 4,000 paths each), and resampling does not widen their spread."""
    runs = {
        resample: torch.stack(
            [_forecast(model, contexts, resample, seed).weighted_mean()[:, -1] for seed in range(3)]
        )
        for resample in (None, 0.5)
    }
    plain, resampled = runs[None], runs[0.5]
    error = ((plain.var(0) + resampled.var(0)) / 3).sqrt()
    gap = (plain.mean(0) - resampled.mean(0)).abs()
    assert bool((gap < 5 * error + 0.02).all()), (gap, error)


def test_bad_resampling_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"resample must be a fraction in \(0, 1\]"):
        Refinement(resample=0.0)
    with pytest.raises(ValueError, match="resampling must be 'systematic' or 'multinomial'"):
        Refinement(resample=0.5, resampling="stratified")  # type: ignore[arg-type]
