"""`GaussianGRUForecaster`: a DeepAR-like recurrent forecaster with Gaussian outputs.

As DeepAR (Salinas et al., 2020): one GRU shared by all series, each series a sequence of its
own (so series are independent given their histories), fed the previous value divided by its
window's context scale, calendar features and covariates, and an embedding of the series;
trained by the Gaussian likelihood of every next value of every training window; forecasts
are ancestral samples, each sample path fed its own draws. Unlike DeepAR, the mean is
predicted as a change from the previous value, which suits trending series.

Example:
    >>> import numpy as np, pandas as pd
    >>> index = pd.date_range("2020-01-01", periods=50, freq="D")
    >>> data = pd.Series(np.sin(np.arange(50) / 3) + 5, index=index, name="y")
    >>> gru = GaussianGRUForecaster(prediction_length=3, context_length=10, hidden=8, layers=1)
    >>> _ = gru.fit(data, epochs=2, progress=False, seed=0)
    >>> gru.predict(data, num_samples=16, seed=0).samples.shape
    torch.Size([16, 1, 3, 1])
"""

from __future__ import annotations

__all__ = ["GaussianGRUForecaster"]

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snfseq.forecasting.base import Forecaster
from snfseq.forecasting.frequency import Freq
from snfseq.forecasting.inputs import History
from snfseq.forecasting.scaling import Scaling, context_scale, sliding_windows
from snfseq.runtime import evaluating, seeded
from snfseq.training import fit_loop

_LOG_2PI = float(np.log(2 * np.pi))


class _Network(nn.Module):
    """GRU over ``(previous value, features, series embedding)`` -> Gaussian of the next value."""

    def __init__(
        self, series: int, features: int, hidden: int, layers: int, dropout: float, embedding: int
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(series, embedding)
        self.rnn = nn.GRU(
            1 + features + embedding,
            hidden,
            layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.head = nn.Linear(hidden, 2)

    def forward(
        self, previous: Tensor, features: Tensor, series: Tensor, state: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``previous: [N, T]``, ``features: [N, T, K]``, ``series: [N]`` -> ``loc``, ``scale``
        ``[N, T]`` and the state."""
        embedded = self.embedding(series)[:, None].expand(-1, previous.shape[1], -1)
        out, state = self.rnn(torch.cat([previous.unsqueeze(-1), features, embedded], -1), state)
        change, raw_scale = self.head(out).unbind(-1)
        return previous + change, F.softplus(raw_scale) + 1e-4, state


class GaussianGRUForecaster(Forecaster):
    """DeepAR-like GRU with Gaussian outputs, independent across series (see the module).

    Args:
        prediction_length: Steps to forecast ``H``.
        context_length: Steps each forecast conditions on.
        freq: Frequency alias; inferred when None.
        hidden: GRU units.
        layers: GRU layers.
        dropout: Dropout between GRU layers.
        embedding: Size of the series embedding.
        **options: ``scaling`` (``"mean_abs"`` default: without it the GRU reads raw values),
            ``calendar``, ``max_gap`` and the long-format column names.

    Example:
        >>> GaussianGRUForecaster(prediction_length=2, context_length=8).variant()
        'DeepAR-like'
    """

    takes_features = True

    def __init__(
        self,
        prediction_length: int,
        context_length: int,
        freq: Freq = None,
        *,
        hidden: int = 40,
        layers: int = 2,
        dropout: float = 0.1,
        embedding: int = 4,
        scaling: Scaling = "mean_abs",
        **options: Any,
    ) -> None:
        if context_length is None:
            raise ValueError("context_length must be an integer >= 1, got None")
        super().__init__(prediction_length, context_length, freq, scaling=scaling, **options)
        self.network_options: dict[str, Any] = {
            "hidden": hidden,
            "layers": layers,
            "dropout": dropout,
            "embedding": embedding,
        }
        self._params |= self.network_options
        self.network_: _Network | None = None

    def variant(self, **options: Any) -> str:
        """``"DeepAR-like"``."""
        return "DeepAR-like"

    def _rows(self, windows: np.ndarray, features: np.ndarray | None) -> Tensor:
        """Windows ``[N, L, D]`` as one row per series: ``[N * D, L, 2 + K]`` holding the scaled
        value, the series index and the features."""
        count, length, series = windows.shape
        scale = context_scale(windows[:, : self.context_length], self.scaling, self.series_scale_)
        values = (windows / scale[:, None]).transpose(0, 2, 1).reshape(-1, length, 1)
        ids = np.broadcast_to(np.arange(series)[None, :, None, None], (count, series, length, 1))
        parts = [values, ids.reshape(-1, length, 1)]
        if features is not None:
            parts.append(np.repeat(features, series, axis=0))
        return torch.as_tensor(np.concatenate(parts, -1), dtype=torch.float32)

    def _fit(
        self,
        history: History,
        features: np.ndarray | None,
        *,
        epochs: int = 50,
        progress: bool = True,
        seed: int | None = None,
        **options: Any,
    ) -> None:
        """Trains on every window by likelihood; ``options`` go to
        :func:`snfseq.training.fit_loop` (``batch_size``, ``lr``...)."""
        assert self.context_length is not None
        length = self.context_length + self.prediction_length
        feature_windows = None if features is None else sliding_windows(features, length)
        rows = self._rows(sliding_windows(history.values, length), feature_windows)
        with seeded(seed):
            network = _Network(history.values.shape[1], rows.shape[-1] - 2, **self.network_options)

            def loss(batch: Tensor) -> Tensor:
                values, ids = batch[..., 0], batch[:, 0, 1].long()
                loc, scale, _ = network(values[:, :-1], batch[:, 1:, 2:], ids)
                z = (values[:, 1:] - loc) / scale
                return (0.5 * (z.square() + _LOG_2PI) + scale.log()).mean()

            generator = None if seed is None else torch.Generator().manual_seed(seed)
            self.fit_history_ = fit_loop(
                network,
                rows,
                loss,
                epochs=epochs,
                progress=progress,
                generator=generator,
                **options,
            )
        self.network_ = network

    @torch.no_grad()
    def _sample(  # type: ignore[override]
        self,
        histories: list[np.ndarray],
        features: list[np.ndarray] | None,
        num_samples: int,
        seed: int | None,
    ) -> tuple[Tensor, Tensor | None]:
        assert self.network_ is not None and self.context_length is not None
        context, horizon = self.context_length, self.prediction_length
        contexts = np.stack([history[-context:] for history in histories])  # [B, C, D]
        batch, _, series = contexts.shape
        windows = np.concatenate([contexts, np.zeros((batch, horizon, series))], 1)
        feature_windows = None
        if features is not None:
            feature_windows = np.stack([f[-(context + horizon) :] for f in features])
        rows = self._rows(windows, feature_windows)  # [B * D, C + H, 2 + K]
        scale = context_scale(contexts, self.scaling, self.series_scale_)  # [B, D]
        values, ids, covariates = rows[..., 0], rows[:, 0, 1].long(), rows[..., 2:]
        with seeded(seed), evaluating(self.network_):
            loc, spread, state = self.network_(
                values[:, :context], covariates[:, 1 : context + 1], ids
            )
            # Every sample path its own row: row s * (B * D) + r.
            state = state.repeat(1, num_samples, 1)
            ids, covariates = ids.repeat(num_samples), covariates.repeat(num_samples, 1, 1)
            loc, spread = loc[:, -1:].repeat(num_samples, 1), spread[:, -1:].repeat(num_samples, 1)
            draws = []
            for step in range(horizon):
                draw = loc + spread * torch.randn_like(loc)
                draws.append(draw)
                if step + 1 < horizon:
                    index = context + step + 1
                    loc, spread, state = self.network_(
                        draw, covariates[:, index : index + 1], ids, state
                    )
        paths = torch.cat(draws, 1).reshape(num_samples, batch, series, horizon).transpose(2, 3)
        return (paths.double() * torch.from_numpy(scale)[:, None]).float(), None

    def _modules(self) -> dict[str, nn.Module]:
        return {} if self.network_ is None else {"network": self.network_}

    def _extra(self) -> dict[str, Any]:
        assert self.network_ is not None
        return {
            "series": self.network_.embedding.num_embeddings,
            "features": self.network_.rnn.input_size - 1 - self.network_options["embedding"],
        }

    def _restore(self, state: dict[str, Tensor], extra: dict[str, Any]) -> None:
        self.network_ = _Network(extra["series"], extra["features"], **self.network_options)
