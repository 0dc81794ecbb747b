"""Does GRU-SNF beat GRU-NF on real keypoints? The ablation benchmark of the paper's claims.

The GRU-SNF paper (``/work/shared/paper-notes.md``) claims, against GRU-NF: (1) lower energy
distance, (2) higher APD (diversity), (3) fidelity kept, (4) gains that grow with the
horizon. This script tests each claim on real face and body-motion keypoints against GRU-NF,
against the published baseline (GRU-NF feeding the sample mean back) and against a
noise-matched control the paper lacks.

Data (built in, nothing downloaded): *face*, the 10-keypoint layout (``mesh10``, D = 20,
x/y in normalised image units) of the bundled videos: train + validation on ``wolfgang``
(cut in time 85 / 15 with a gap of the context length), test on ``carphone`` (another
person, held out entirely). *body*, the 15 DeepMimic clips (15 joints x 3, D = 45, metres),
split by clip with a seeded shuffle (:func:`assign_clips`): the test set takes the first
clips long enough for 20 test windows each until it has 2 clips and 60 windows (so that
short clips do not leave it with one motion), validation the next clips until 2 clips and
20 windows, the rest train (11 / 2 / 2 clips: test crawl + dance_a, validation run + roll);
the JSON and the report name them. Context 8 -> horizon 16 (the paper's), S = 100 sample
paths; training windows with stride 1, validation and test windows with stride 2.

Variants (one batched forecast call per variant and seed, every test window at once):
``gru-nf`` (per-sample recurrent states, no refinement); ``mean-feedback`` (the sample mean
fed back: the published baseline); ``published`` (mean feedback + ``Refinement.paper(
faithful=True)``, the published code as is); ``paper`` (``Refinement.paper()``: valid RWM,
published energy, per-sample states); ``rwm``, ``mala``, ``hmc`` (``Refinement(kernel=...)``
with its defaults: a Gaussian target around the trained point head); ``name+w``: the same
samples scored with their importance weights (no new run); ``paper+smc``, ``mala+smc``
(``resample=0.5``, scored weighted); ``control:R`` for R in published, paper, mala: GRU-NF's
samples plus i.i.d. Gaussian noise added after sampling (never fed back) with a scale
``sigma[h, d]``, ``sigma^2 = max(0, var_R - var_GRU-NF)`` (sample variances averaged over
the validation windows: :func:`quality_stats.noise_scale`). Where R is narrower than GRU-NF
the control is GRU-NF itself; the report gives the validation APD of R, of its control and
of GRU-NF side by side, and the share of ``(h, d)`` cells where sigma is 0.

Models: *small* (GRU 2 x 128, 5 affine couplings of (128, 128)) for every seed on both
datasets; *paper* size (GRU 3 x 512, 5 couplings of 3 x 512, ``encoder_input="frames"``,
bench_forecast's ``paper_model``) on face for 2 seeds. ``model.fit(train, val_windows=val,
seed=seed)`` with early stopping on the validation windows; the held-out NLL
(``model.nll`` of the test windows) of every model is in the JSON. A seed sets the initial
weights, the training order and the forecasts' random stream (the same stream for every
variant of a seed: common random numbers sharpen the paired differences).

Metrics, per test window (weighted where weights exist): energy score (the window's 16 x D
values as one vector); energy distance per window with the 8 context frames prepended as
the paper does (``ed_window``) and on the future frames only (``ed_future``): the context
frames are the same in every sample and in the truth, so per window the two coincide (both
twice the energy score), which the report checks; the POOLED energy distance the paper
reports: every window's forecast windows (context + forecast, flattened) pooled, each
window carrying 1 / B of the mass, against all true windows, the V-statistic
``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (:func:`quality_stats.pooled_energy_distance`; the
forecast pairs of two different windows come from ``pooled_points`` = 20 points per window,
every fifth sample or a systematic resample of the weights, those within a window from all
samples); with the context frames in, it mostly measures how windows differ. CRPS
(mean over steps and features); variogram score (order 0.5) over the D features of each
step, averaged over steps (the whole-window version costs 1.5-4 s per variant and seed);
APD (p = 1, the paper's mean absolute pairwise difference; weighted, it is undefined, n/a,
where a window's weights sit on one path); ADE/FDE of the per-coordinate
(weighted) median forecast; minADE/minFDE (best of all S samples) and the MAE of the best
S / 5 samples (the paper's best 20 of 100): best-of metrics ignore the weights (they pick
samples; a weight says how often one would be drawn); coverage of the central 50 % / 90 %
intervals; Kish ESS of the path weights; cost: ms per forecast step of the batched call
(B windows x S samples, wall time / H, measured in the run on ``--threads`` threads, so it
moves with the machine's load). Per step: energy score, APD and CRPS of each frame.

Statistics: per window, values are averaged over seeds first; 95 % intervals come from a
moving-block bootstrap over windows (blocks of (context + horizon) / stride = 12
consecutive windows, never crossing a sequence boundary, 2,000 replicates); paired
differences (variant minus baseline, per window, same replicates) get their own intervals,
the pooled energy distance too (a replicate keeps its within- and between-window parts
apart, so that copies of a window do not pass for windows that agree). Baselines: gru-nf,
mean-feedback and, for the judged refinements, their noise control. Claims table, one rule:
*held* when the 95 % interval of the paired difference excludes zero in the claimed
direction, *not held* when it excludes zero in the other, *inconclusive* otherwise. (1)
``ed_future`` lower (the pooled figure beside it); (2) APD higher; (3) fidelity kept: the
ADE of the median forecast and the best-S/5 MAE not worse, i.e. held unless one of their
intervals lies entirely above zero (a not-worse claim has no inconclusive outcome); (4)
gains grow with the horizon: the paired per-step energy-score difference averaged over the
last 4 steps minus that over the first 4, claimed negative. Judged for published, paper
and mala against each baseline, per dataset and model size. Many comparisons: a few
intervals exclude zero by chance.

Run: ``python benchmarks/bench_quality.py [--quick] [--seeds N] [--threads N] [--out DIR]``
writes ``quality.json``, ``quality.md`` and ``quality.png`` (per-step paired energy-score
difference vs GRU-NF with bands, one panel per dataset and size; APD vs energy score) in
``results/``; ``--quick`` (tiny models, 1 seed, 24 windows per sequence, S = 20, under 30 s
on 1 thread) writes ``quality_quick.json`` and ``.md`` only.

Size of the full run (5 seeds of the small model on both datasets, 2 of the paper size on
face): about 20 minutes at 1 thread, timed from a 1-seed run at 1 thread (5.9 min on the
2-core AMD EPYC under a load of 1-3 from other processes; per seed 33 s face small, 200 s
face paper size, 117 s body small, of which scoring 9, 8 and 60 s); on 2 idle threads
(the default) somewhat less, and under 40 minutes even at 1 thread. ``--threads 1`` is the
safer choice when other processes share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from machine import cpu_name
from quality_stats import (
    VERDICTS,
    block_indices,
    fidelity_verdict,
    interval,
    noise_scale,
    pooled_interval,
    pooled_matrices,
    verdict,
)
from torch import Tensor

from snfseq import Refinement, SequenceFlow, data, metrics
from snfseq.files import atomic_write, json_ready
from snfseq.weights import kish_ess

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
MIN_TEST_WINDOWS, MIN_VAL_WINDOWS, MIN_CLIP_WINDOWS, CLIP_SEED = 60, 20, 20, 0
GRU_NF, MEAN, PUBLISHED, PAPER, MALA = "gru-nf", "mean-feedback", "published", "paper", "mala"
#: The refinements whose claims are judged; each gets a noise-matched control.
JUDGED = (PUBLISHED, PAPER, MALA)
SMC = ("paper+smc", "mala+smc")
#: Per-window metrics (lower is better except APD and ESS; coverage: nearest its level).
WINDOW_KEYS = (
    "energy_score",
    "ed_window",
    "ed_future",
    "crps",
    "variogram",
    "apd",
    "ade_median",
    "fde_median",
    "min_ade",
    "min_fde",
    "mae_best",
    "coverage_50",
    "coverage_90",
    "ess",
)
STEP_KEYS = ("energy_score_step", "apd_step", "crps_step")
PAIRED_KEYS = ("energy_score", "ed_future", "crps", "variogram", "apd", "ade_median", "mae_best")
EARLY_LATE = 4
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def runs() -> dict[str, tuple[Refinement | None, str]]:
    """The forecast runs, ``name -> (refinement, feedback)``.

    Example:
        >>> refinement, feedback = runs()["published"]
        >>> refinement.kernel, feedback
        ('per-coordinate', 'mean')
    """
    return {
        GRU_NF: (None, "sample"),
        MEAN: (None, "mean"),
        PUBLISHED: (Refinement.paper(faithful=True), "mean"),
        PAPER: (Refinement.paper(), "sample"),
        "rwm": (Refinement(kernel="rwm"), "sample"),
        MALA: (Refinement(kernel="mala"), "sample"),
        "hmc": (Refinement(kernel="hmc"), "sample"),
        "paper+smc": (replace(Refinement.paper(), resample=0.5), "sample"),
        "mala+smc": (Refinement(kernel="mala", resample=0.5), "sample"),
    }


def control(name: str) -> str:
    """The noise-matched control's name of refinement ``name``.

    Example:
        >>> control("mala")
        'control:mala'
    """
    return f"control:{name}"


@dataclass(frozen=True)
class ModelSize:
    """A model size and its training budget (``epochs`` at most; early stopping after
    ``patience`` epochs without a better validation loss)."""

    name: str
    hidden: int
    layers: int
    transforms: int
    flow_hidden: tuple[int, ...]
    encoder_input: str = "frames+deltas"
    epochs: int = 60
    patience: int = 10
    lr: float = 1e-3
    batch_size: int = 64

    def describe(self) -> str:
        """One line for the report.

        Example:
            >>> SMALL.describe()
            'GRU 2 x 128, 5 affine couplings of (128, 128), encoder input frames+deltas'
        """
        widths = ", ".join(map(str, self.flow_hidden))
        return (
            f"GRU {self.layers} x {self.hidden}, {self.transforms} affine couplings of "
            f"({widths}), encoder input {self.encoder_input}"
        )


SMALL = ModelSize("small", 128, 2, 5, (128, 128), epochs=60, patience=10)
PAPER_SIZE = ModelSize("paper", 512, 3, 5, (512, 512, 512), "frames", epochs=30, patience=6)


@dataclass(frozen=True)
class Settings:
    """Everything a run depends on (``windows_per_sequence``: keep the first so many test and
    validation windows of each sequence; None keeps all)."""

    quick: bool = False
    seeds: int = 5
    paper_seeds: int = 2
    samples: int = 100
    context: int = 8
    horizon: int = 16
    stride: int = 2
    train_stride: int = 1
    windows_per_sequence: int | None = None
    bootstrap: int = 2000
    pooled_points: int = 20
    small: ModelSize = SMALL
    paper: ModelSize = PAPER_SIZE
    paper_datasets: tuple[str, ...] = ("face",)
    threads: int = 2

    @property
    def block(self) -> int:
        """Bootstrap block length in windows: those sharing frames with a given window."""
        return max(1, round((self.context + self.horizon) / self.stride))

    @property
    def best(self) -> int:
        """``K`` of the best-K-of-S MAE (20 of 100)."""
        return max(1, self.samples // 5)


QUICK = Settings(
    quick=True,
    seeds=1,
    paper_seeds=1,
    samples=20,
    train_stride=4,
    windows_per_sequence=24,
    bootstrap=200,
    small=ModelSize("small", 16, 1, 2, (16,), epochs=2),
    paper=ModelSize("paper", 24, 2, 2, (24,), "frames", epochs=2),
)


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[bench_quality] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------- data


@dataclass
class Split:
    """A dataset's windows ``Tensor[N, context + horizon, D]`` in data units, the test
    windows' count per sequence (``groups``, for the block bootstrap) and what they are."""

    name: str
    coords: int
    train: Tensor
    val: Tensor
    test: Tensor
    groups: list[int]
    description: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> int:
        """Features per frame ``D``."""
        return self.test.shape[-1]


def window_count(length: int, window: int, stride: int) -> int:
    """Windows of ``window`` frames, ``stride`` apart, in a sequence of ``length`` frames.

    Example:
        >>> window_count(120, 24, 2), window_count(20, 24, 2)
        (49, 0)
    """
    return max(0, (length - window) // stride + 1)


def _windows(sequences: Sequence[np.ndarray], settings: Settings, stride: int, cap: int | None):
    """Windows of every sequence long enough, the first ``cap`` of each; their counts."""
    pieces = [
        data.make_windows([s], settings.context, settings.horizon, stride)[:cap]
        for s in sequences
        if len(s) >= settings.context + settings.horizon
    ]
    return torch.cat(pieces), [len(p) for p in pieces]


def face_split(settings: Settings) -> Split:
    """Face (mesh10): train + validation on wolfgang cut in time, test on carphone."""
    wolfgang, carphone = data.face_sequences(
        ["wolfgang", "carphone"], layout="mesh10", progress=False
    )
    train, val = data.split_sequences([wolfgang], (0.85, 0.15), by="time", gap=settings.context)
    cap = settings.windows_per_sequence
    train_windows, _ = _windows(train, settings, settings.train_stride, None)
    val_windows, _ = _windows(val, settings, settings.stride, cap)
    test_windows, groups = _windows([carphone], settings, settings.stride, cap)
    description = {
        "train": f"wolfgang frames 0-{len(train[0]) - 1}",
        "validation": f"wolfgang last {len(val[0])} frames (gap {settings.context})",
        "test": "carphone (all frames)",
        "test_sequences": ["carphone"],
    }
    return Split("face", 2, train_windows, val_windows, test_windows, groups, description)


def assign_clips(
    lengths: dict[str, int], window: int, stride: int, seed: int = CLIP_SEED
) -> tuple[list[str], list[str], list[str]]:
    """Train, validation and test clips from a seeded shuffle: the test set takes the first
    clips with at least ``MIN_CLIP_WINDOWS`` windows each until it has 2 clips and
    ``MIN_TEST_WINDOWS`` windows, validation the next clips with a window until 2 clips and
    ``MIN_VAL_WINDOWS`` windows; the rest train.

    Example:
        >>> lengths = {"a": 100, "b": 30, "c": 100, "d": 60, "e": 25, "f": 100}
        >>> assign_clips(lengths, 24, 2, seed=3)
        (['a'], ['e', 'b', 'd'], ['c', 'f'])
    """
    order = [list(lengths)[i] for i in np.random.default_rng(seed).permutation(len(lengths))]
    parts: list[list[str]] = []
    for needed, smallest in ((MIN_TEST_WINDOWS, MIN_CLIP_WINDOWS), (MIN_VAL_WINDOWS, 1)):
        part: list[str] = []
        for clip in list(order):
            if (
                len(part) >= 2
                and sum(window_count(lengths[c], window, stride) for c in part) >= needed
            ):
                break
            if window_count(lengths[clip], window, stride) >= smallest:
                part.append(clip)
                order.remove(clip)
        parts.append(part)
    return order, parts[1], parts[0]


def body_split(settings: Settings) -> Split:
    """Body motion (DeepMimic joints, D = 45), split by clip (:func:`assign_clips`)."""
    clips = data.mocap_clips()
    sequences = dict(zip(clips, data.mocap_sequences(clips), strict=True))
    lengths = {name: len(s) for name, s in sequences.items()}
    window = settings.context + settings.horizon
    train, val, test = assign_clips(lengths, window, settings.stride)
    cap = settings.windows_per_sequence
    train_windows, _ = _windows(
        [sequences[c] for c in train], settings, settings.train_stride, None
    )
    val_windows, _ = _windows([sequences[c] for c in val], settings, settings.stride, cap)
    test_windows, groups = _windows([sequences[c] for c in test], settings, settings.stride, cap)
    kept = [c for c in test if lengths[c] >= window]
    description = {
        "train": ", ".join(train),
        "validation": ", ".join(val),
        "test": ", ".join(f"{c} ({lengths[c]} frames)" for c in test),
        "test_sequences": kept,
        "rule": f"seeded shuffle (seed {CLIP_SEED}); test: clips of >= {MIN_CLIP_WINDOWS} "
        f"windows until >= 2 clips and >= {MIN_TEST_WINDOWS} windows; validation: the next "
        f"clips until >= 2 clips and >= {MIN_VAL_WINDOWS} windows; the rest train",
    }
    return Split("body", 3, train_windows, val_windows, test_windows, groups, description)


# --------------------------------------------------------------------------------- models


def train(split: Split, size: ModelSize, seed: int, settings: Settings):
    """A model of ``size`` fitted on the split's training windows (early stopping on the
    validation windows); its record: epochs, time, held-out and validation NLL."""
    torch.manual_seed(seed)
    model = SequenceFlow(
        features=split.features,
        hidden=size.hidden,
        layers=size.layers,
        transforms=size.transforms,
        flow_hidden=size.flow_hidden,
        encoder_input=size.encoder_input,
    )
    tic = time.perf_counter()
    history = model.fit(
        split.train,
        context=settings.context,
        val_windows=split.val,
        epochs=size.epochs,
        patience=size.patience,
        lr=size.lr,
        batch_size=size.batch_size,
        seed=seed,
        progress=False,
        device="cpu",
    )
    record = {
        "seed": seed,
        "epochs_run": len(history.train_loss),
        "best_epoch": history.best_epoch,
        "train_s": time.perf_counter() - tic,
        "heldout_nll": float(model.nll(split.test, settings.context).mean()),
        "val_nll": float(model.nll(split.val, settings.context).mean()),
    }
    return model, record


def forecast(model: SequenceFlow, windows: Tensor, name: str, settings: Settings, seed: int):
    """Variant ``name``'s forecast of every window in one call, and its wall time in s."""
    refinement, feedback = runs()[name]
    with warnings.catch_warnings():  # collapsed weights are reported as the ESS instead
        warnings.simplefilter("ignore", RuntimeWarning)
        tic = time.perf_counter()
        result = model.forecast(
            windows[:, : settings.context],
            settings.horizon,
            settings.samples,
            refinement,
            feedback=feedback,  # type: ignore[arg-type]
            seed=seed,
        )
    return result, time.perf_counter() - tic


# -------------------------------------------------------------------------------- scoring


def score(
    samples: Tensor, log_weights: Tensor | None, windows: Tensor, coords: int, best: int
) -> dict[str, np.ndarray]:
    """Every metric of one forecast, per window ``Array[B]`` (:data:`WINDOW_KEYS`) and per
    window and step ``Array[B, H]`` (:data:`STEP_KEYS`).

    Args:
        samples: ``Tensor[S, B, H, D]`` forecasts in data units.
        log_weights: ``Tensor[S, B]`` path log-weights, or None.
        windows: ``Tensor[B, C + H, D]``: the true windows, context first.
        coords: Coordinates per keypoint (ADE/FDE).
        best: ``K`` of the best-K MAE.

    Example:
        >>> import torch
        >>> values = score(torch.zeros(4, 3, 2, 4), None, torch.ones(3, 5, 4), 2, 2)
        >>> values["ade_median"].tolist(), values["apd_step"].shape
        ([1.4142..., 1.4142..., 1.4142...], (3, 2))
    """
    size, batch, horizon, _ = samples.shape
    context, future = windows[:, :-horizon], windows[:, -horizon:]
    step_weights = None if log_weights is None else log_weights[..., None].expand(-1, -1, horizon)
    full = torch.cat([context.expand(size, -1, -1, -1), samples], dim=2)
    crps = metrics.crps(samples, future, log_weights=log_weights)
    # One sort for the median and both intervals (metrics.coverage's closed intervals).
    q05, q25, median, q75, q95 = metrics.quantile(samples, QUANTILES, log_weights=log_weights)
    ess = torch.full((batch,), float(size)) if log_weights is None else kish_ess(log_weights)
    apd_step = weighted_apd(samples, log_weights, per_step=True)
    values = {
        "energy_score": metrics.energy_score(samples, future, log_weights=log_weights),
        "ed_window": metrics.energy_distance(
            windows[None], full, event_dims=2, y_log_weights=log_weights
        ),
        "ed_future": metrics.energy_distance(
            future[None], samples, event_dims=2, y_log_weights=log_weights
        ),
        "crps": crps.mean((1, 2)),
        "variogram": metrics.variogram_score(
            samples, future, event_dims=1, log_weights=step_weights
        ).mean(1),
        "apd": apd_step.mean(1),  # p = 1: the window's APD is the mean of its steps'
        "ade_median": metrics.ade(median[None], future, coords=coords),
        "fde_median": metrics.fde(median[None], future, coords=coords),
        "min_ade": metrics.min_ade(samples, future, coords=coords),
        "min_fde": metrics.min_fde(samples, future, coords=coords),
        "mae_best": metrics.mae(samples, future, point="samples", best=best),
        "coverage_50": ((q25 <= future) & (future <= q75)).double().mean((1, 2)),
        "coverage_90": ((q05 <= future) & (future <= q95)).double().mean((1, 2)),
        "ess": ess,
        "energy_score_step": metrics.energy_score(
            samples, future, event_dims=1, log_weights=step_weights
        ),
        "apd_step": apd_step,
        "crps_step": crps.mean(-1),
    }
    return {key: value.double().numpy() for key, value in values.items()}


def weighted_apd(samples: Tensor, log_weights: Tensor | None, per_step: bool = False) -> Tensor:
    """APD (p = 1) of ``samples: Tensor[S, B, H, D]`` under path weights, ``Tensor[B]`` (or
    ``Tensor[B, H]`` per step); NaN for a window whose weights sit on one path (the weighted
    pair mass ``1 - sum w^2`` vanishes: no pair of distinct samples to compare).

    Example:
        >>> import torch
        >>> samples = torch.arange(3.0).reshape(3, 1, 1, 1).expand(3, 2, 1, 1)
        >>> weighted_apd(samples, torch.tensor([[0.0, 0.0], [0.0, -200.0], [0.0, -200.0]]))
        tensor([1.3333,    nan])
    """
    if log_weights is None:
        return metrics.apd(samples, p=1, event_dims=1 if per_step else 2)
    w = torch.softmax(log_weights.float(), dim=0)
    collapsed = (w * (1 - w)).sum(0) < 1e-5
    safe = torch.where(collapsed, torch.zeros_like(log_weights), log_weights)
    if per_step:
        safe = safe[..., None].expand(-1, -1, samples.shape[2])
        collapsed = collapsed[:, None].expand(-1, samples.shape[2])
    values = metrics.apd(samples, p=1, event_dims=1 if per_step else 2, log_weights=safe)
    return values.masked_fill(collapsed, float("nan"))


def evaluate(
    samples: Tensor, log_weights: Tensor | None, split: Split, settings: Settings, cost: float
) -> dict[str, Any]:
    """:func:`score` of a test forecast, its pooled-distance matrices (context + forecast
    windows, :func:`quality_stats.pooled_matrices`) and its cost in ms per step."""
    context = split.test[:, : settings.context].expand(samples.shape[0], -1, -1, -1)
    full = torch.cat([context, samples], dim=2)
    return {
        "values": score(samples, log_weights, split.test, split.coords, settings.best),
        "pooled": pooled_matrices(full, split.test, log_weights, thin=settings.pooled_points),
        "cost_ms": cost,
    }


def run_seed(split: Split, size: ModelSize, seed: int, settings: Settings) -> dict[str, Any]:
    """One seed of one study: train, match the noise controls on the validation windows,
    forecast the test windows with every variant and score them."""
    model, record = train(split, size, seed, settings)
    log(
        f"{split.name}/{size.name} seed {seed}: trained in {record['train_s']:.0f} s "
        f"({record['epochs_run']} epochs, best {record['best_epoch']}), held-out NLL "
        f"{record['heldout_nll']:.3f}"
    )
    noise = torch.Generator().manual_seed(10_000 + seed)
    validation = {n: forecast(model, split.val, n, settings, seed)[0] for n in (GRU_NF, *JUDGED)}
    reference = validation[GRU_NF].samples
    scales, controls = {}, {}
    for name in JUDGED:
        refined = validation[name].samples
        scales[name] = noise_scale(refined, reference)
        matched = reference + scales[name] * torch.randn(reference.shape, generator=noise)
        controls[name] = {
            "val_apd": float(metrics.apd(refined, p=1).mean()),
            "val_apd_control": float(metrics.apd(matched, p=1).mean()),
            "val_apd_gru_nf": float(metrics.apd(reference, p=1).mean()),
            "sigma_mean": float(scales[name].mean()),
            "sigma_zero_share": float((scales[name] == 0).double().mean()),
        }
    scored: dict[str, Any] = {}
    base_samples, base_cost, forecasting, started = None, 0.0, 0.0, time.perf_counter()
    for name in runs():
        result, seconds = forecast(model, split.test, name, settings, seed)
        forecasting += seconds
        cost = 1000 * seconds / settings.horizon
        if name not in SMC:
            scored[name] = evaluate(result.samples, None, split, settings, cost)
        if result.log_weights is not None:
            weighted = name if name in SMC else f"{name}+w"
            scored[weighted] = evaluate(result.samples, result.log_weights, split, settings, cost)
        if name == GRU_NF:
            base_samples, base_cost = result.samples, cost
    assert base_samples is not None
    for name in JUDGED:
        tic = time.perf_counter()
        noisy = base_samples + scales[name] * torch.randn(base_samples.shape, generator=noise)
        cost = base_cost + 1000 * (time.perf_counter() - tic) / settings.horizon
        scored[control(name)] = evaluate(noisy, None, split, settings, cost)
    scoring = time.perf_counter() - started - forecasting
    log(
        f"{split.name}/{size.name} seed {seed}: {len(runs())} test forecasts {forecasting:.0f} s, "
        f"{len(scored)} variants scored in {scoring:.0f} s"
    )
    return {"training": record, "controls": controls, "scored": scored}


# ---------------------------------------------------------------------------- statistics


def baselines_of(name: str) -> list[str]:
    """The baselines a variant is paired with.

    Example:
        >>> baselines_of("paper"), baselines_of("gru-nf")
        (['gru-nf', 'mean-feedback', 'control:paper'], ['mean-feedback'])
    """
    chosen = [b for b in (GRU_NF, MEAN) if b != name]
    return chosen + ([control(name)] if name in JUDGED else [])


def early_late(step_difference: np.ndarray) -> np.ndarray:
    """Claim 4's per-window statistic from a paired per-step difference ``Array[N, H]``: its
    mean over the last 4 steps minus its mean over the first 4 (``Array[N]``).

    Example:
        >>> import numpy as np
        >>> early_late(np.array([[0.0] * 4 + [1.0] * 4 + [-2.0] * 4]))
        array([-2.])
    """
    count = min(EARLY_LATE, step_difference.shape[1] // 2)
    return step_difference[:, -count:].mean(1) - step_difference[:, :count].mean(1)


def summarise(split: Split, size: ModelSize, seeds: list[dict], settings: Settings) -> dict:
    """Seed-averaged per-window values, their intervals, the paired differences and the
    claims of one study (dataset x model size)."""
    indices = block_indices(split.groups, settings.block, settings.bootstrap)
    names = list(seeds[0]["scored"])

    def averaged(name: str, key: str) -> np.ndarray:
        return np.mean([s["scored"][name]["values"][key] for s in seeds], axis=0)

    def pooled(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        parts = [s["scored"][name]["pooled"] for s in seeds]
        return tuple(np.mean([p[i] for p in parts], axis=0) for i in range(3))  # type: ignore[return-value]

    variants: dict[str, dict[str, Any]] = {}
    for name in names:
        variants[name] = {
            "metrics": {key: interval(averaged(name, key), indices) for key in WINDOW_KEYS},
            "per_step": {key: interval(averaged(name, key), indices) for key in STEP_KEYS},
            "pooled_ed": pooled_interval(pooled(name), indices),
            "cost_ms_per_step": float(np.mean([s["scored"][name]["cost_ms"] for s in seeds])),
            "per_seed": {
                key: [float(s["scored"][name]["values"][key].mean()) for s in seeds]
                for key in WINDOW_KEYS
            },
        }
    paired: dict[str, dict[str, Any]] = {}
    for name in names:
        paired[name] = {}
        for base in baselines_of(name):
            differences = {
                key: interval(averaged(name, key) - averaged(base, key), indices)
                for key in PAIRED_KEYS
            }
            step = averaged(name, "energy_score_step") - averaged(base, "energy_score_step")
            differences["energy_score_step"] = interval(step, indices)
            differences["late_minus_early"] = interval(early_late(step), indices)
            differences["pooled_ed"] = pooled_interval(pooled(name), indices, pooled(base))
            paired[name][base] = differences
    claims = []
    for name in JUDGED:
        for base in baselines_of(name):
            d = paired[name][base]
            claims.append(
                {
                    "refinement": name,
                    "baseline": base,
                    "energy_distance": verdict(d["ed_future"], "lower"),
                    "apd": verdict(d["apd"], "higher"),
                    "fidelity": fidelity_verdict(d["ade_median"], d["mae_best"]),
                    "horizon": verdict(d["late_minus_early"], "lower"),
                }
            )
    gap = max(
        abs(v["metrics"]["ed_window"]["mean"] - v["metrics"]["ed_future"]["mean"])
        for v in variants.values()
    )
    controls = {
        name: {key: float(np.mean([s["controls"][name][key] for s in seeds])) for key in keys}
        for name, keys in seeds[0]["controls"].items()
    }
    return {
        "model": asdict(size),
        "seeds": len(seeds),
        "test_windows": int(split.test.shape[0]),
        "groups": split.groups,
        "training": [s["training"] for s in seeds],
        "heldout_nll_mean": float(np.mean([s["training"]["heldout_nll"] for s in seeds])),
        "controls": controls,
        "variants": variants,
        "paired": paired,
        "claims": claims,
        "ed_window_minus_future_max": gap,
    }


def run_study(split: Split, size: ModelSize, seeds: int, settings: Settings) -> dict:
    """Every seed of one study, then :func:`summarise`."""
    return summarise(
        split, size, [run_seed(split, size, s, settings) for s in range(seeds)], settings
    )


def benchmark(settings: Settings) -> dict[str, Any]:
    """Both datasets, the small model for every seed, the paper size where configured."""
    out: dict[str, Any] = {}
    for build in (face_split, body_split):
        split = build(settings)
        log(
            f"{split.name}: {len(split.train)} training, {len(split.val)} validation, "
            f"{len(split.test)} test windows ({split.groups})"
        )
        studies = {settings.small.name: run_study(split, settings.small, settings.seeds, settings)}
        if split.name in settings.paper_datasets:
            seeds = min(settings.paper_seeds, settings.seeds)
            studies[settings.paper.name] = run_study(split, settings.paper, seeds, settings)
        description = split.description | {
            "features": split.features,
            "train_windows": len(split.train),
            "val_windows": len(split.val),
            "test_windows": len(split.test),
            "test_groups": split.groups,
        }
        out[split.name] = {"split": description, "studies": studies}
    return out


# --------------------------------------------------------------------------------- report

LABELS = {
    "energy_score": "ES",
    "ed_window": "ED window",
    "ed_future": "ED future",
    "pooled_ed": "pooled ED",
    "crps": "CRPS",
    "variogram": "VS",
    "apd": "APD",
    "ade_median": "ADE median",
    "fde_median": "FDE median",
    "min_ade": "minADE",
    "min_fde": "minFDE",
    "mae_best": "MAE best K",
    "coverage_50": "cov 50",
    "coverage_90": "cov 90",
    "ess": "ESS",
}


def cell(stats: dict[str, Any], signed: bool = False) -> str:
    """``mean [low, high]`` with 3 significant digits; n/a for missing numbers.

    Example:
        >>> cell({"mean": 0.012345, "low": 0.01, "high": 0.0151})
        '0.0123 [0.01, 0.0151]'
        >>> cell({"mean": -0.5, "low": -1.0, "high": None}, signed=True)
        '-0.5 [-1, n/a]'
    """
    form = "{:+.3g}" if signed else "{:.3g}"

    def number(value: Any) -> str:
        return "n/a" if value is None or not np.isfinite(value) else form.format(value)

    return f"{number(stats['mean'])} [{number(stats['low'])}, {number(stats['high'])}]"


def claim_cell(word: str, stats: dict[str, Any]) -> str:
    """A verdict in bold with its paired difference."""
    return f"**{word}** {cell(stats, signed=True)}"


def study_lines(dataset: str, size: str, study: dict, samples: int) -> list[str]:
    """The report's section of one study."""
    model = ModelSize(**{**study["model"], "flow_hidden": tuple(study["model"]["flow_hidden"])})
    training = study["training"]
    nll = ", ".join(f"seed {t['seed']}: {t['heldout_nll']:.3f}" for t in training)
    epochs = ", ".join(f"{t['epochs_run']} (best {t['best_epoch']})" for t in training)
    lines = [
        f"## {dataset}, {size} model",
        "",
        f"{model.describe()}; {study['seeds']} seeds; {study['test_windows']} test windows "
        f"(per sequence: {study['groups']}). Held-out NLL per feature (test windows, lower is "
        f"better): {nll}; mean {study['heldout_nll_mean']:.3f}. Epochs run: {epochs}. Cost: "
        f"one call of {study['test_windows']} windows x {samples} samples = "
        f"{study['test_windows'] * samples} rows.",
        "",
        "### Scores (mean over test windows [95 % interval])",
        "",
    ]
    first = ("energy_score", "ed_window", "ed_future", "pooled_ed", "crps", "variogram", "apd")
    second = tuple(k for k in WINDOW_KEYS if k not in first) + ("cost",)
    for keys in (first, second):
        head = [LABELS.get(k, "ms / step") for k in keys]
        lines += ["| variant | " + " | ".join(head) + " |", "|---|" + "---:|" * len(keys)]
        for name, v in study["variants"].items():
            cells = []
            for key in keys:
                if key == "pooled_ed":
                    cells.append(cell(v["pooled_ed"]))
                elif key == "cost":
                    cells.append(f"{v['cost_ms_per_step']:.1f}")
                else:
                    cells.append(cell(v["metrics"][key]))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    keys = (*PAIRED_KEYS, "pooled_ed", "late_minus_early")
    head = [LABELS.get(k, "ES late - early") for k in keys]
    lines += [
        "### Paired differences (variant - baseline, per window; [95 % interval])",
        "",
        "| variant | baseline | " + " | ".join(head) + " |",
        "|---|---|" + "---:|" * len(keys),
    ]
    for name, by_base in study["paired"].items():
        for base, d in by_base.items():
            cells = [cell(d[k], signed=True) for k in keys]
            lines.append(f"| {name} | {base} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### Claims",
        "",
        "| refinement | baseline | (1) ED future lower | pooled ED diff | (2) APD higher | "
        "(3) fidelity: ADE median, MAE best K | (4) gains grow: ES late - early |",
        "|---|---|---|---:|---|---|---|",
    ]
    for claim in study["claims"]:
        d = study["paired"][claim["refinement"]][claim["baseline"]]
        lines.append(
            f"| {claim['refinement']} | {claim['baseline']} | "
            f"{claim_cell(claim['energy_distance'], d['ed_future'])} | "
            f"{cell(d['pooled_ed'], signed=True)} | {claim_cell(claim['apd'], d['apd'])} | "
            f"**{claim['fidelity']}** {cell(d['ade_median'], True)}, "
            f"{cell(d['mae_best'], True)} | "
            f"{claim_cell(claim['horizon'], d['late_minus_early'])} |"
        )
    lines += [
        "",
        "### Noise-matched controls: validation APD (mean over validation windows and seeds)",
        "",
        "| refinement | APD refinement | APD its control | APD GRU-NF | mean sigma | "
        "cells with sigma = 0 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, c in study["controls"].items():
        same = " (control = GRU-NF)" if c["sigma_zero_share"] == 1 else ""
        lines.append(
            f"| {name} | {c['val_apd']:.4g} | {c['val_apd_control']:.4g} | "
            f"{c['val_apd_gru_nf']:.4g} | {c['sigma_mean']:.3g} | "
            f"{100 * c['sigma_zero_share']:.0f} %{same} |"
        )
    return lines + [""]


def glance(result: dict) -> list[str]:
    """The claims of every study in one table of verdicts."""
    lines = [
        "| dataset | model | refinement | baseline | (1) ED lower | (2) APD higher | "
        "(3) fidelity kept | (4) gains grow |",
        "|---|---|---|---|---|---|---|---|",
    ]
    counts = dict.fromkeys(VERDICTS, 0)
    for dataset, entry in result["datasets"].items():
        for size, study in entry["studies"].items():
            for c in study["claims"]:
                words = [c["energy_distance"], c["apd"], c["fidelity"], c["horizon"]]
                for word in words:
                    counts[word] += 1
                lines.append(
                    f"| {dataset} | {size} | {c['refinement']} | {c['baseline']} | "
                    + " | ".join(words)
                    + " |"
                )
    tally = ", ".join(f"{n} {word}" for word, n in counts.items())
    return [f"Verdicts: {tally}.", "", *lines]


def markdown(result: dict) -> str:
    """The report: header, claims at a glance, then one section per study and the notes."""
    m, s = result["machine"], result["settings"]
    quick = " (--quick: tiny models, not a result)" if s["quick"] else ""
    lines = [
        "# GRU-SNF's claims on real keypoints: refinements vs GRU-NF, the published baseline "
        "and noise-matched controls",
        "",
        f"Machine: {m['cpu']}, {m['cpu_count']} CPUs, {m['torch_threads']} torch threads, "
        f"torch {m['torch']}, Python {m['python']}; commit {result['head']}. Run time "
        f"{result['run_minutes']:.1f} min{quick}.",
        "",
        f"Context {s['context']} -> horizon {s['horizon']}, S = {s['samples']} samples, test "
        f"and validation windows with stride {s['stride']}; seeds: {s['seeds']} (small model), "
        f"{min(s['paper_seeds'], s['seeds'])} (paper size, on {', '.join(s['paper_datasets'])})."
        f" Intervals: 95 % moving-block bootstrap over test windows ({s['block']} windows a "
        f"block, within sequences, {s['bootstrap']} replicates) of the seed-averaged "
        f"per-window values. MAE best K: the best {s['best']} of {s['samples']} samples. Cost: "
        f"ms per forecast step of one batched call (all test windows x S samples). Methods, "
        "definitions and the claims rule: the script's docstring.",
        "",
    ]
    for dataset, entry in result["datasets"].items():
        split = entry["split"]
        lines.append(
            f"- {dataset}: D = {split['features']}; train {split['train']} "
            f"({split['train_windows']} windows); validation {split['validation']} "
            f"({split['val_windows']} windows); test {split['test']} ({split['test_windows']} "
            "windows)."
        )
    lines += ["", "## Claims at a glance", "", *glance(result), ""]
    for dataset, entry in result["datasets"].items():
        for size, study in entry["studies"].items():
            lines += study_lines(dataset, size, study, s["samples"])
    lines += ["## Notes", "", *[f"- {note}" for note in notes(result)]]
    return "\n".join(lines) + "\n"


def notes(result: dict) -> list[str]:
    """Caveats, with this run's numbers."""
    gaps = [
        study["ed_window_minus_future_max"]
        for entry in result["datasets"].values()
        for study in entry["studies"].values()
    ]
    return [
        "Per window the paper's energy distance with the context frames prepended equals the "
        "future-only one (the context is the same in samples and truth; largest gap between "
        f"their means here {max(gaps):.2g}); the context matters only in the pooled figure, "
        "where it adds how windows differ from one another to both sides. Its intervals are "
        "percentile intervals of a skewed statistic: the point estimate can sit at or just "
        "outside them.",
        "Weighted variants (+w, +smc) rest on the Kish ESS shown; path weights multiply over "
        "16 steps, so a low ESS makes their weighted scores noisy.",
        "minADE, minFDE and the best-K MAE ignore weights and favour wide forecasts: read them "
        "beside ES, CRPS and the ADE of the median.",
        "The face test set is one video (carphone): its windows give only a few independent "
        "blocks, so intervals are wide; 3 refinements x 3 baselines x 4 claims x several "
        "studies: a few intervals exclude zero by chance.",
    ]


def plot(result: dict, path: Path) -> None:
    """quality.png: per study, the per-step paired energy-score difference vs GRU-NF with
    its 95 % band (top) and APD vs energy score of every variant (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    studies = [
        (f"{dataset}, {size}", study)
        for dataset, entry in result["datasets"].items()
        for size, study in entry["studies"].items()
    ]
    fig, axes = plt.subplots(2, len(studies), figsize=(5.5 * len(studies), 9), squeeze=False)
    for column, (title, study) in enumerate(studies):
        top, bottom = axes[0, column], axes[1, column]
        for name in (*JUDGED, control(MALA), MEAN):
            d = study["paired"][name][GRU_NF]["energy_score_step"]
            steps = np.arange(1, len(d["mean"]) + 1)
            (line,) = top.plot(steps, d["mean"], marker=".", label=name)
            top.fill_between(steps, d["low"], d["high"], color=line.get_color(), alpha=0.15)
        top.axhline(0, color="grey", linewidth=0.8)
        top.set_title(title, fontsize=10)
        top.set_xlabel("forecast step")
        top.set_ylabel("energy score minus GRU-NF's (per step, 95 % band)")
        top.legend(fontsize=7)
        for name, v in study["variants"].items():
            x, y = v["metrics"]["apd"]["mean"], v["metrics"]["energy_score"]["mean"]
            if x is None or y is None:
                continue
            bottom.scatter(x, y, s=18, marker="s" if name.startswith("control") else "o")
            bottom.annotate(name, (x, y), fontsize=6)
        bottom.set_xlabel("APD (p = 1, higher = more diverse)")
        bottom.set_ylabel("energy score (lower is better)")
        for axis in (top, bottom):
            axis.grid(alpha=0.3)
    fig.suptitle("GRU-SNF ablation on real keypoints (bench_quality.py)", fontsize=11)
    fig.tight_layout()
    with atomic_write(path) as partial:
        fig.savefig(partial, dpi=110, format="png")
    plt.close(fig)


def rounded(value: Any, digits: int = 5) -> Any:
    """``value`` with every float rounded to ``digits`` significant digits (the JSON's size).

    Example:
        >>> rounded({"a": [0.123456789, 2], "b": 12345.678})
        {'a': [0.12346, 2], 'b': 12346.0}
    """
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item, digits) for item in value]
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    return value


def machine() -> dict[str, Any]:
    """The CPU, threads and library versions."""
    return {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark and writes its JSON and report (and, in full mode, the figure)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny models, 1 seed, S = 20")
    parser.add_argument("--seeds", type=int, default=None, help="default 5 (--quick: 1)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the results")
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    settings = QUICK if args.quick else Settings()
    settings = replace(settings, seeds=args.seeds or settings.seeds, threads=args.threads)
    torch.set_num_threads(args.threads)
    tic = time.perf_counter()
    datasets = benchmark(settings)
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    result = rounded(
        json_ready(
            {
                "head": head,
                "machine": machine(),
                "run_minutes": (time.perf_counter() - tic) / 60,
                "settings": asdict(settings) | {"block": settings.block, "best": settings.best},
                "datasets": datasets,
            }
        )
    )
    # Everything is rendered before the first file is written: a failure writes nothing.
    report, text = markdown(result), json.dumps(result, indent=1, allow_nan=False)
    stem = "quality_quick" if settings.quick else "quality"
    args.out.mkdir(parents=True, exist_ok=True)
    if not settings.quick:
        plot(result, args.out / f"{stem}.png")
    with atomic_write(args.out / f"{stem}.json") as partial:
        partial.write_text(text)
    with atomic_write(args.out / f"{stem}.md") as partial:
        partial.write_text(report)
    log(f"wrote {args.out / stem}.* in {(time.perf_counter() - tic) / 60:.1f} min")
    return result


if __name__ == "__main__":
    main()
