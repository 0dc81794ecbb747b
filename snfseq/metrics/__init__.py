"""Forecast metrics for sample (ensemble) forecasts, optionally importance weighted.

The catalogue, by module:

* :mod:`snfseq.metrics.multivariate`: ``energy_score``, ``energy_distance``,
  ``variogram_score`` and ``apd`` (average pairwise distance, a diversity measure), which
  treat the event as one vector.
* :mod:`snfseq.metrics.univariate`: ``crps``, ``quantile`` and ``coverage``, entry by entry.
* :mod:`snfseq.metrics.errors`: ``mae`` and ``mse`` (of a point forecast, of the samples, or
  best-of-K), ``ade``/``fde`` and their best-of-S ``min_ade``/``min_fde``.
* ``_core`` (private): argument checks, dtype rules, event reduction and the
  self-normalisation of importance weights; ``_pairwise`` (private): the blocked
  pairwise-distance kernels.

Every metric takes ``samples`` with the sample axis first, ``Tensor[S, *B, H, D]`` (``S``
samples, any batch dims ``B``, ``H`` time steps, ``D`` features), and, where it compares
with an outcome, ``obs`` of shape ``Tensor[*B, H, D]``. The trailing ``event_dims`` axes
(default 2: time and features) form one event; metrics reduce the sample axis and return
batch-shaped tensors unless a ``reduce`` argument asks otherwise.

Importance weights, such as the path log-weights of a stochastic normalizing flow, enter
every metric through ``weights=`` (non-negative) and/or ``log_weights=`` (both
``Tensor[S, *B]``, broadcastable, aligned with the leading axes of ``samples``). They are
self-normalised over ``S`` (:func:`snfseq.weights.normalize`); given both, they multiply. A
weighted metric is the metric of the weighted empirical distribution, so integer weights
``[1, 3, 2]`` give the same V-statistic as repeating the samples once, three and two times.
Fair (unbiased) estimators divide the pair term by ``1 - sum(w**2)`` instead of ``1``, which
is ``(S - 1) / S`` for equal weights; they are not repetition invariant, because repeated
copies are not distinct draws.

Pairwise terms cost ``O(S**2 F)`` time for ``F`` event entries but never hold an
``S x S x F`` array: rows of the distance matrix are computed block by block from
``|a - b|**2 = |a|**2 + |b|**2 - 2 a.b`` (one matrix product) on data centred at the sample
mean, only the upper block triangle is computed, and pairs too close for that formula's
cancellation (duplicates, neighbours in few dimensions) are recomputed from their
difference, so every float32 distance is accurate to better than 1e-5 relative. Without a
``chunk_size`` the temporaries stay within about 2**20 elements plus one centred copy of
the samples of a few series; results do not depend on ``chunk_size`` beyond rounding. CRPS
and the ``p=1`` APD use the ``O(S log S)`` sorted-sample form with cumulative weights.
Everything runs on the device and in the floating dtype of the input (computing in at
least float32); the energy metrics and CRPS are differentiable.

Example:
    >>> import torch
    >>> from snfseq import metrics
    >>> samples, obs = torch.randn(100, 4, 8, 6), torch.randn(4, 8, 6)
    >>> metrics.energy_score(samples, obs).shape
    torch.Size([4])
    >>> metrics.crps(samples, obs).shape, metrics.crps(samples, obs, reduce="mean").shape
    (torch.Size([4, 8, 6]), torch.Size([4]))
    >>> log_w = torch.randn(100, 4)
    >>> metrics.min_ade(samples, obs, coords=3, log_weights=log_w).shape
    torch.Size([4])
"""

from __future__ import annotations

__all__ = [
    "ade",
    "apd",
    "coverage",
    "crps",
    "energy_distance",
    "energy_score",
    "fde",
    "mae",
    "min_ade",
    "min_fde",
    "mse",
    "quantile",
    "variogram_score",
]

from snfseq.metrics._core import Reduce as Reduce
from snfseq.metrics.errors import ade, fde, mae, min_ade, min_fde, mse
from snfseq.metrics.multivariate import apd, energy_distance, energy_score, variogram_score
from snfseq.metrics.univariate import coverage, crps, quantile
