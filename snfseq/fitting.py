"""Training a :class:`~snfseq.SequenceFlow`: its data (windows, covariates, validation split),
its normalisation, its loss, and the loop of :mod:`snfseq.training`, in one process or
across torchrun's processes (:mod:`snfseq.distributed`).

Example:
    >>> import torch
    >>> from snfseq import SequenceFlow
    >>> model = SequenceFlow(features=2, hidden=8, layers=1, transforms=2, flow_hidden=(8,))
    >>> history = model.fit(torch.randn(32, 10, 2).cumsum(1), context=4, epochs=2, progress=False)
    >>> len(history.train_loss), len(history.val_loss)
    (2, 2)
"""

from __future__ import annotations

__all__ = ["Fitting"]

from typing import Any

import numpy as np
import torch
from torch import Tensor

from snfseq import distributed
from snfseq.encoding import Encoding
from snfseq.training import FitHistory, fit_loop
from snfseq.validation import as_windows
from snfseq.windows import Windows, batches

# Lazily built windows: at most this many fit the normalisation (drawn at random; 256 windows
# hold thousands of frames) and validate each epoch (evenly spaced over the validation block).
_NORMALIZER_WINDOWS = 256
_VALIDATION_WINDOWS = 1024
# Windows per forward pass when validating.
_VALIDATION_BATCH = 64


class Fitting(Encoding):
    """The training half of :class:`~snfseq.SequenceFlow`, which subclasses it."""

    @property
    def features(self) -> int:
        """Features per frame ``D``."""
        return self.config.features

    @property
    def device(self) -> torch.device:
        """The device of the parameters."""
        return next(self.parameters()).device

    def _as_windows(self, x: Tensor | np.ndarray, name: str, min_frames: int) -> Tensor:
        return as_windows(x, name, self.features, min_frames).to(self.device)

    def _lazy(self, windows: Windows, covariates: object) -> Windows:
        """Checked :class:`~snfseq.windows.Windows` ``[N, T, D + K]``, on the model's device."""
        if covariates is not None:
            raise ValueError("Windows carry their covariates as channels; pass covariates=None")
        return windows.checked(self.features + self.config.covariates).to(self.device)

    def _horizon_nll(self, log_prob: Tensor, context: int) -> Tensor:
        """``Tensor[N]``: the NLL per feature and horizon frame, in data units, from the
        teacher-forced log-densities ``Tensor[N, T - 1]`` in the flow's space."""
        horizon_log_prob = log_prob[:, context - 1 :] - self._flow_log_jacobian()
        return -horizon_log_prob.mean(1) / self.features

    def fit(
        self,
        windows: Tensor | np.ndarray | Windows,
        *,
        context: int | None = None,
        covariates: Tensor | np.ndarray | None = None,
        val_windows: Tensor | np.ndarray | None = None,
        val_covariates: Tensor | np.ndarray | None = None,
        val_fraction: float = 0.1,
        seed: int | None = 0,
        device: str | torch.device | None = None,
        **options: Any,
    ) -> FitHistory:
        """Trains by teacher-forced likelihood (loop: :func:`snfseq.training.fit_loop`).

        Args:
            windows: Training windows ``Tensor[N, T, D]`` in data units, or
                :class:`~snfseq.windows.Windows` of a long series, built a batch at a time
                (``[N, T, D + K]`` with the covariates as the last ``K`` channels; the
                normalisation is then fitted on at most 256 of them, drawn at random, and
                validation uses at most 1,024 evenly spaced windows of the last
                ``val_fraction``).
            context: Frames of each window that set its normalisation (as at forecast time);
                default ``T // 3``.
            covariates: ``Tensor[N, T, K]``, the covariates of every frame of ``windows``
                (a model built with ``covariates=K`` only); their standardisation is fitted
                on the training part.
            val_windows: Validation windows; when None, the last ``val_fraction`` of
                ``windows`` (a contiguous block, so overlapping windows leak only at its edge).
                Split by sequence beforehand (:func:`snfseq.data.split_sequences`) for an
                honest validation set.
            val_covariates: The covariates of ``val_windows``.
            val_fraction: See ``val_windows``; 0 disables validation and early stopping.
            seed: Seeds the randomness of training (initial shuffles, dropout); under
                torchrun every process must use the same seed (one order of the windows).
            device: ``"cpu"``, ``"cuda"``...; default CUDA when available (under torchrun,
                ``cuda:LOCAL_RANK``).
            **options: ``epochs`` (100), ``batch_size`` (64), ``lr`` (1e-3), ``weight_decay``
                (1e-6), ``clip_norm`` (5), ``patience`` (10), ``num_batches_per_epoch`` (None:
                every window once), ``progress`` (True), ``checkpoint`` (a file of the
                resumable training state), ``checkpoint_every`` (steps),
                ``checkpoint_minutes``, ``resume`` (False): see
                :func:`~snfseq.training.fit_loop`.

        Under ``torchrun --nproc_per_node=N`` the same call trains with
        DistributedDataParallel (:mod:`snfseq.distributed`): every process fits the
        normalisation on all training windows, takes its share of every batch, and the
        validation losses are reduced across processes; the model keeps no wrapper, so it
        forecasts in a single process afterwards.

        Returns:
            The :class:`~snfseq.training.FitHistory`.
        """
        device = distributed.device_for(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        ranks = distributed.join(device)  # under torchrun: this process's share of the work
        try:
            return self._fit(
                windows,
                context,
                covariates,
                val_windows,
                val_covariates,
                val_fraction,
                seed,
                device,
                ranks,
                options,
            )
        finally:
            distributed.leave(ranks)

    def _fit(
        self,
        windows: Tensor | np.ndarray | Windows,
        context: int | None,
        covariates: Tensor | np.ndarray | None,
        val_windows: Tensor | np.ndarray | None,
        val_covariates: Tensor | np.ndarray | None,
        val_fraction: float,
        seed: int | None,
        device: torch.device,
        ranks: distributed.Ranks,
        options: dict[str, Any],
    ) -> FitHistory:
        self.to(device)
        features = self.features
        train: Tensor | Windows
        if isinstance(windows, Windows):
            train = self._lazy(windows, covariates)
        else:
            train = self._joined(self._as_windows(windows, "windows", 2), covariates, "covariates")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        count, length = train.shape[:2]
        context = length // 3 if context is None else context
        if not 1 <= context < length:
            raise ValueError(f"context must be in [1, {length - 1}] for windows of {length} frames")
        # fit_loop batches rows: the frames and their covariates travel as one [N, T, D + K].
        val: Tensor | Windows | None = None
        if val_windows is not None:
            val = self._as_windows(val_windows, "val_windows", context + 1)
            val = self._joined(val, val_covariates, "val_covariates")
        elif val_fraction > 0 and count >= 10:
            cut = count - max(1, int(round(val_fraction * count)))
            train, val = train[:cut], train[cut:]
            if isinstance(val, Windows):
                val = val[:: -(-len(val) // _VALIDATION_WINDOWS)]
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        if seed is not None:
            torch.manual_seed(seed)
        fitted = (
            train.sample(_NORMALIZER_WINDOWS, generator) if isinstance(train, Windows) else train
        )
        self.normalizer.fit(fitted[..., :features].cpu(), context)
        self.normalizer.to(device)
        if self.config.covariates:
            self.covariate_scaler.fit(fitted[..., features:])
        del fitted

        def losses(rows: Tensor) -> tuple[Tensor, Tensor]:
            """The training loss of a batch and its teacher-forced log-densities."""
            frames, z = self._split(rows)
            log_prob, point_error = self._teacher_forced(frames, context, z)
            value = -log_prob.mean() / features + self.config.point_weight * point_error.mean()
            return value, log_prob

        def validate() -> tuple[float, float]:
            assert val is not None
            total, nll, count = 0.0, 0.0, 0
            shard = val[ranks.rank :: ranks.world] if ranks.world > 1 else val
            for rows in batches(shard, _VALIDATION_BATCH):  # one teacher-forced pass for both
                value, log_prob = losses(rows)
                total += float(value) * rows.shape[0]
                nll += float(self._horizon_nll(log_prob, context).sum())
                count += rows.shape[0]
            total, nll, seen = distributed.summed([total, nll, float(count)], ranks, device)
            return total / seen, nll / seen

        return fit_loop(
            self,
            train,
            lambda rows: losses(rows)[0],
            validate=None if val is None else validate,
            generator=generator,
            ranks=ranks,
            **options,
        )

    # ------------------------------------------------------------------ forecasting
