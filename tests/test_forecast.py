"""The Forecast result object: summaries, weights, xarray export."""

from __future__ import annotations

import warnings

import pytest
import torch

from snfseq import Forecast
from snfseq.forecast import kish_ess


def test_weighted_summaries_follow_the_weights() -> None:
    values = torch.arange(50.0).reshape(50, 1, 1, 1).expand(50, 2, 3, 4).clone()
    log_weights = torch.zeros(50, 2)
    log_weights[:25] = -torch.inf  # the first half carries no weight
    fc = Forecast(samples=values, log_weights=log_weights)
    assert fc.quantile(0.0, weighted=True).min() == 25.0
    assert fc.quantile(0.0).min() == 0.0
    torch.testing.assert_close(fc.weighted_mean(), torch.full((2, 3, 4), 37.0))
    torch.testing.assert_close(fc.ess, torch.full((2,), 25.0))


def test_kish_ess_bounds_and_export() -> None:
    assert kish_ess(torch.tensor([0.0, -torch.inf, -torch.inf])).item() == pytest.approx(1.0)
    fc = Forecast(samples=torch.randn(4, 2, 3, 5), log_weights=torch.zeros(4, 2))
    array = fc.to_xarray(time=[10, 11, 12])
    assert array.dims == ("sample", "series", "time", "feature")
    assert list(array.time.values) == [10, 11, 12] and "log_weight" in array.coords
    with pytest.raises(ValueError, match="samples must be Tensor"):
        Forecast(samples=torch.randn(4, 3, 5))
    with pytest.raises(ValueError, match="quantile levels"):
        fc.quantile(1.5)


def test_collapsed_path_weights_warn_once_per_forecast_and_show_in_the_repr() -> None:
    """The published refinement's weights degenerate over a horizon (ESS 1-4 of 100 on faces):
    a forecast says so through ``warnings`` instead of returning a silently useless weighting."""
    from snfseq import Refinement, SequenceFlow

    torch.manual_seed(0)
    windows = torch.randn(64, 12, 3).cumsum(1)
    model = SequenceFlow(features=3, hidden=8, layers=1, transforms=2, flow_hidden=(8,))
    model.fit(windows, context=6, epochs=2, progress=False)
    sharp = Refinement(kernel="mala", step_size=0.3, steps=3, target_scale=0.05)
    with pytest.warns(RuntimeWarning, match="path weights collapsed: Kish ESS") as record:
        fc = model.forecast(windows[:2, :6], horizon=6, num_samples=50, refinement=sharp, seed=0)
    assert len(record) == 1
    assert fc.ess is not None and float(fc.ess.min()) < 2.5
    assert "path weights: Kish ESS" in repr(fc) and "tensor" not in repr(fc)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no weights, or resampled weights: no warning
        model.forecast(windows[:2, :6], horizon=6, num_samples=50, seed=0)
        resampled = Refinement(
            kernel="mala", step_size=0.3, steps=3, target_scale=0.05, resample=0.5
        )
        model.forecast(windows[:2, :6], horizon=6, num_samples=50, refinement=resampled, seed=0)
