"""The training loop: Adam, a one-cycle schedule, gradient clipping, early stopping on a
validation loss with the best weights restored, and a progress bar.

It knows nothing of the model it trains: it is given a module, the training rows, a loss of a
batch and, optionally, a validation function.

Example:
    >>> import torch
    >>> net = torch.nn.Linear(1, 1)
    >>> x = torch.linspace(-1, 1, 64).unsqueeze(-1)
    >>> history = fit_loop(net, x, lambda b: (net(b) - 3 * b).square().mean(), epochs=40,
    ...                    lr=0.1, progress=False)
    >>> history.train_loss[-1] < history.train_loss[0]
    True
"""

from __future__ import annotations

__all__ = ["FitHistory", "fit_loop"]

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import Tensor, nn
from tqdm import tqdm

from snfseq.windows import Windows


@dataclass
class FitHistory:
    """Per-epoch training record.

    ``val_nll`` is the validation negative log-likelihood per feature and frame, in data units
    (for :meth:`snfseq.SequenceFlow.fit`).

    Example:
        >>> FitHistory(train_loss=[1.0, 0.5], lr=[0.1, 0.01]).to_pandas().shape
        (2, 2)
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_nll: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    def to_pandas(self) -> pd.DataFrame:
        """The history as a ``pandas.DataFrame`` indexed by epoch."""
        columns = {"train_loss": self.train_loss, "lr": self.lr}
        if self.val_loss:
            columns |= {"val_loss": self.val_loss, "val_nll": self.val_nll}
        return pd.DataFrame(columns).rename_axis("epoch")


def fit_loop(
    module: nn.Module,
    rows: Tensor | Windows,
    loss: Callable[[Tensor], Tensor],
    *,
    validate: Callable[[], tuple[float, float]] | None = None,
    epochs: int = 100,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-6,
    clip_norm: float = 5.0,
    patience: int = 10,
    num_batches_per_epoch: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> FitHistory:
    """Trains ``module`` on shuffled mini-batches of ``rows``.

    Args:
        module: The parameters to train; left in eval mode, with the best weights when
            validating.
        rows: Training rows ``Tensor[N, ...]`` (batched along the first axis), or
            :class:`~snfseq.windows.Windows` that build each batch when it is drawn.
        loss: Scalar loss of a batch ``Tensor[n, ...]``.
        validate: Returns ``(val_loss, val_nll)`` for the current weights (called in eval
            mode, without gradients); None disables validation and early stopping.
        epochs: Most epochs to run.
        batch_size: Rows per step.
        lr: Peak learning rate of the one-cycle schedule.
        weight_decay: Adam weight decay.
        clip_norm: Gradient-norm clip.
        patience: Epochs without validation improvement before stopping.
        num_batches_per_epoch: Batches per epoch (an "epoch" is then this many batches,
            drawn in a shuffled order that continues across epochs, as GluonTS trains on long
            histories); None: one pass over ``rows``.
        generator: Random generator of the shuffling.
        progress: Show a tqdm bar (counting batches, with the epoch and the losses).

    Returns:
        The :class:`FitHistory`.

    Example:
        >>> import torch
        >>> net = torch.nn.Linear(1, 1)
        >>> x = torch.linspace(-1, 1, 32).unsqueeze(-1)
        >>> history = fit_loop(net, x, lambda b: (net(b) - 2 * b).square().mean(), epochs=20,
        ...                    validate=lambda: (0.0, 0.0), patience=3, progress=False)
        >>> history.best_epoch, history.stopped_early, len(history.train_loss), net.training
        (0, True, 4, False)
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be >= 1")
    if num_batches_per_epoch is not None and num_batches_per_epoch < 1:
        raise ValueError(f"num_batches_per_epoch must be >= 1, got {num_batches_per_epoch}")
    count = len(rows)
    optimizer = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = num_batches_per_epoch or math.ceil(count / batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch
    )
    history = FitHistory()
    best_state: dict[str, Tensor] | None = None
    best, stale = math.inf, 0
    bar = tqdm(total=epochs * steps_per_epoch, desc="fit", disable=not progress, unit="batch")
    order, position = torch.randperm(count, generator=generator), 0
    for epoch in range(epochs):
        module.train()
        total, seen = 0.0, 0
        for _ in range(steps_per_epoch):
            if position >= count:
                order, position = torch.randperm(count, generator=generator), 0
            index = order[position : position + batch_size]
            position += batch_size
            batch = rows[index.to(rows.device)]
            value = loss(batch)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            nn.utils.clip_grad_norm_(module.parameters(), clip_norm)
            optimizer.step()
            scheduler.step()
            total += float(value.detach()) * batch.shape[0]
            seen += batch.shape[0]
            bar.update()
        history.train_loss.append(total / seen)
        history.lr.append(float(scheduler.get_last_lr()[0]))
        postfix = {"epoch": str(epoch + 1), "loss": f"{history.train_loss[-1]:.3f}"}
        if validate is not None:
            module.eval()
            with torch.no_grad():
                val_loss, val_nll = validate()
            history.val_loss.append(val_loss)
            history.val_nll.append(val_nll)
            postfix["val_nll"] = f"{val_nll:.3f}"
            if val_loss < best - 1e-4:
                best, stale, history.best_epoch = val_loss, 0, epoch
                best_state = copy.deepcopy(module.state_dict())
            else:
                stale += 1
                if stale >= patience:
                    history.stopped_early = True
                    bar.set_postfix(postfix)
                    break
        bar.set_postfix(postfix)
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return history
