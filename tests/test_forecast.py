"""The Forecast result object: summaries, weights, xarray export."""

from __future__ import annotations

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
