"""The training loop: Adam, a one-cycle schedule, gradient clipping, early stopping on a
validation loss with the best weights restored, and a progress bar; across processes under
torchrun (DistributedDataParallel, :mod:`snfseq.distributed`) and resumable from its own
checkpoints (:mod:`snfseq.resume`).

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
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from snfseq import resume as resuming
from snfseq.distributed import Ranks, gathered, summed
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


class _Objective(nn.Module):
    """The loss of a batch as a module's forward, so that DistributedDataParallel can wrap it
    (the trained module's own state dict stays free of any wrapper)."""

    def __init__(self, module: nn.Module, loss: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.module = module
        self.loss = loss

    def forward(self, batch: Tensor) -> Tensor:
        return self.loss(batch)


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
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    checkpoint_minutes: float | None = None,
    resume: bool = False,
    ranks: Ranks | None = None,
) -> FitHistory:
    """Trains ``module`` on shuffled mini-batches of ``rows``.

    Args:
        module: The parameters to train; left in eval mode, with the best weights when
            validating.
        rows: Training rows ``Tensor[N, ...]`` (batched along the first axis), or
            :class:`~snfseq.windows.Windows` that build each batch when it is drawn.
        loss: Scalar loss of a batch ``Tensor[n, ...]`` (a mean over its rows).
        validate: Returns ``(val_loss, val_nll)`` for the current weights (called in eval
            mode, without gradients, on every rank); None disables validation and early
            stopping.
        epochs: Most epochs to run.
        batch_size: Rows per step (all ranks together: each takes its share of every batch).
        lr: Peak learning rate of the one-cycle schedule.
        weight_decay: Adam weight decay.
        clip_norm: Gradient-norm clip.
        patience: Epochs without validation improvement before stopping.
        num_batches_per_epoch: Batches per epoch (an "epoch" is then this many batches,
            drawn in a shuffled order that continues across epochs, as GluonTS trains on long
            histories); None: one pass over ``rows``.
        generator: Random generator of the shuffling (the same seed on every rank: they
            share one order of the rows).
        progress: Show a tqdm bar (counting batches, with the epoch and the losses) on rank 0.
        checkpoint: File of the resumable training state (written atomically by rank 0).
        checkpoint_every: Write it every this many steps.
        checkpoint_minutes: Write it when this many minutes have passed since the last one.
        resume: Continue from ``checkpoint`` when it exists (else start afresh).
        ranks: This process among the torchrun processes (:func:`snfseq.distributed.join`);
            None: a single process.

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
    if checkpoint_every is not None and checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1 step, got {checkpoint_every}")
    if checkpoint_minutes is not None and checkpoint_minutes <= 0:
        raise ValueError(f"checkpoint_minutes must be > 0, got {checkpoint_minutes}")
    if checkpoint is None and (resume or checkpoint_every or checkpoint_minutes):
        raise ValueError("resume, checkpoint_every and checkpoint_minutes need a checkpoint file")
    ranks = ranks or Ranks()
    count = len(rows)
    optimizer = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = num_batches_per_epoch or math.ceil(count / batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch
    )
    objective: nn.Module = _Objective(module, loss)
    if ranks.world > 1:
        objective = DistributedDataParallel(objective)
    run = _Run(history=FitHistory(), order=torch.randperm(count, generator=generator))
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        run = _resumed(checkpoint, module, optimizer, scheduler, generator, ranks)
        if run.finished:
            module.eval()
            return run.history
    device = next(module.parameters()).device
    bar = tqdm(
        total=epochs * steps_per_epoch,
        initial=run.epoch * steps_per_epoch + run.step,
        desc="fit",
        disable=not (progress and ranks.main),
        unit="batch",
    )
    last_save = time.monotonic()
    while run.epoch < epochs:
        module.train()
        while run.step < steps_per_epoch:
            if run.position >= count:
                run.order, run.position = torch.randperm(count, generator=generator), 0
            index = run.order[run.position : run.position + batch_size]
            run.position += batch_size
            mine, share = _share(index, ranks)
            batch = rows[mine.to(rows.device)]
            value = objective(batch)
            optimizer.zero_grad(set_to_none=True)
            (value * share if share != 1.0 else value).backward()
            nn.utils.clip_grad_norm_(module.parameters(), clip_norm)
            optimizer.step()
            scheduler.step()
            if share > 0:
                run.total += float(value.detach()) * batch.shape[0]
                run.seen += batch.shape[0]
            run.step += 1
            bar.update()
            if checkpoint is not None and _due(
                run, checkpoint_every, checkpoint_minutes, last_save, steps_per_epoch, ranks, device
            ):
                _save(checkpoint, module, optimizer, scheduler, run, generator, ranks)
                last_save = time.monotonic()
        total, seen = summed([run.total, float(run.seen)], ranks, device)
        run.history.train_loss.append(total / seen)
        run.history.lr.append(float(scheduler.get_last_lr()[0]))
        postfix = {"epoch": str(run.epoch + 1), "loss": f"{run.history.train_loss[-1]:.3f}"}
        stop = False
        if validate is not None:
            module.eval()
            with torch.no_grad():
                val_loss, val_nll = validate()
            run.history.val_loss.append(val_loss)
            run.history.val_nll.append(val_nll)
            postfix["val_nll"] = f"{val_nll:.3f}"
            if val_loss < run.best - 1e-4:
                run.best, run.stale, run.history.best_epoch = val_loss, 0, run.epoch
                run.best_state = copy.deepcopy(module.state_dict())
            else:
                run.stale += 1
                if run.stale >= patience:
                    run.history.stopped_early = stop = True
        bar.set_postfix(postfix)
        run.epoch, run.step, run.total, run.seen = run.epoch + 1, 0, 0.0, 0
        if stop:
            break
    bar.close()
    if run.best_state is not None:
        module.load_state_dict(run.best_state)
    module.eval()
    if checkpoint is not None:
        run.finished = True
        _save(checkpoint, module, optimizer, scheduler, run, generator, ranks)
    return run.history


@dataclass
class _Run:
    """Where a training run stands: what a checkpoint keeps besides the weights."""

    history: FitHistory
    order: Tensor
    position: int = 0
    epoch: int = 0
    step: int = 0  # the next step within the epoch
    total: float = 0.0  # this rank's summed loss over the epoch's rows so far
    seen: int = 0
    best: float = math.inf
    stale: int = 0
    best_state: dict[str, Tensor] | None = None
    finished: bool = False


def _share(index: Tensor, ranks: Ranks) -> tuple[Tensor, float]:
    """This rank's rows of a global batch and the factor on its mean loss that makes DDP's
    average of the ranks' gradients the gradient of the mean over the whole batch (a rank
    left without rows takes one row at factor 0, to take part in the gradient reduction)."""
    if ranks.world == 1:
        return index, 1.0
    mine = index[ranks.rank :: ranks.world]
    if len(mine) == 0:
        return index[:1], 0.0
    return mine, len(mine) * ranks.world / len(index)


def _due(
    run: _Run,
    every: int | None,
    minutes: float | None,
    last_save: float,
    steps_per_epoch: int,
    ranks: Ranks,
    device: torch.device,
) -> bool:
    """Whether to write a checkpoint after this step (the same answer on every rank: the
    clock is rank 0's)."""
    done = run.epoch * steps_per_epoch + run.step
    due = every is not None and done % every == 0
    if minutes is not None:
        late = ranks.main and time.monotonic() - last_save >= 60 * minutes
        due = due or summed([float(late)], ranks, device)[0] > 0
    return due


def _save(
    path: str | os.PathLike[str],
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    run: _Run,
    generator: torch.Generator | None,
    ranks: Ranks,
) -> None:
    """Rank 0 writes the run; every rank hands in its random states and partial sums."""
    own = {"random": resuming.random_states(generator), "total": run.total, "seen": run.seen}
    per_rank = gathered(own, ranks)
    if not ranks.main:
        return
    state = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "history": asdict(run.history),
        "order": run.order,
        "position": run.position,
        "epoch": run.epoch,
        "step": run.step,
        "best": run.best,
        "stale": run.stale,
        "best_state": run.best_state or {},
        "finished": run.finished,
        "ranks": per_rank,
    }
    resuming.save(path, module, state)


def _resumed(
    path: str | os.PathLike[str],
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator | None,
    ranks: Ranks,
) -> _Run:
    """The run of a checkpoint, with the module, optimizer, schedule and random states put
    back as they were when it was written."""
    weights, state = resuming.load(path)
    module.load_state_dict(weights)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    per_rank = state["ranks"]
    own = per_rank[ranks.rank] if len(per_rank) == ranks.world else per_rank[0]
    resuming.restore_random_states(own["random"], generator)
    return _Run(
        history=FitHistory(**state["history"]),
        order=state["order"],
        position=int(state["position"]),
        epoch=int(state["epoch"]),
        step=int(state["step"]),
        total=float(own["total"]) if len(per_rank) == ranks.world else 0.0,
        seen=int(own["seen"]) if len(per_rank) == ranks.world else 0,
        best=float(state["best"]),
        stale=int(state["stale"]),
        best_state=state["best_state"] or None,
        finished=bool(state["finished"]),
    )
