"""What a forecaster's checkpoint holds besides its settings: the fitted series and covariate
names, the frequency, the scales, and the weights of its modules (``Forecaster.save`` writes
them with :mod:`snfseq.checkpoint`, ``Forecaster.load`` reads them back, weights only).

Example:
    >>> import numpy as np
    >>> from snfseq.forecasting import RandomWalkForecaster
    >>> walk = RandomWalkForecaster(2).fit(np.arange(10.0))
    >>> state, fitted = fitted_state(walk)
    >>> sorted(state), fitted["columns"], fitted["freq"]
    (['covariate_mean', 'covariate_std', 'series_scale'], [0], 1)
"""

from __future__ import annotations

__all__ = ["fitted_state", "restore_fitted"]

import os
from typing import Any

import numpy as np
import torch
from torch import Tensor

from snfseq import checkpoint
from snfseq.forecasting.covariates import Features


def _plain(name: Any) -> str | int:
    """A column name a weights-only checkpoint can hold."""
    if isinstance(name, str | np.str_):
        return str(name)
    if isinstance(name, int | np.integer) and not isinstance(name, bool):
        return int(name)
    raise ValueError(f"column name {name!r} is not a str or int; rename it to save the forecaster")


def fitted_state(forecaster: Any) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The tensors (scales, module weights) and the plain data (names, frequency, module
    settings) of a fitted forecaster."""
    columns = forecaster._check_fitted()
    features = forecaster.features_
    state = {
        "series_scale": torch.from_numpy(forecaster.series_scale_.copy()),
        "covariate_mean": torch.from_numpy(np.array(features.mean, dtype=np.float64)),
        "covariate_std": torch.from_numpy(np.array(features.std, dtype=np.float64)),
    }
    for name, module in forecaster._modules().items():
        state |= {f"{name}.{key}": value for key, value in module.state_dict().items()}
    fitted = {
        "columns": [_plain(c) for c in columns],
        "freq": forecaster.freq_,
        "calendar_columns": list(features.calendar_columns),
        "covariate_columns": [_plain(c) for c in features.covariate_columns],
        "modules": forecaster._extra(),
    }
    return state, fitted


def restore_fitted(
    forecaster: Any,
    state: dict[str, Tensor],
    fitted: dict[str, Any],
    path: str | os.PathLike[str],
    map_location: str | torch.device | None = None,
) -> None:
    """Puts :func:`fitted_state`'s content back into a new forecaster of the same settings
    (``path`` names the file in errors)."""
    state = dict(state)
    forecaster.series_scale_ = state.pop("series_scale").double().numpy()
    forecaster.features_ = Features(
        list(fitted["calendar_columns"]),
        list(fitted["covariate_columns"]),
        state.pop("covariate_mean").double().numpy(),
        state.pop("covariate_std").double().numpy(),
    )
    forecaster.freq_ = fitted["freq"]
    forecaster._restore(state, fitted["modules"])
    for name, module in forecaster._modules().items():
        prefix = f"{name}."
        own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        checkpoint.load_state(module, own, path)
        module.to(map_location or "cpu").eval()
    forecaster.columns_ = list(fitted["columns"])
