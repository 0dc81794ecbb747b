"""snfseq's forecasters against GluonTS DeepAR on four real datasets, on the same splits.

Datasets (:func:`snfseq.data.load_series`, nothing downloaded):

========== =================================== ==== ======= =========== ======================
dataset    series                              H    context rows kept   covariates
========== =================================== ==== ======= =========== ======================
EPF_FR_BE  FR and BE day-ahead prices, jointly 24   72      last 365 d  load and generation
                                                                        forecasts
pedestrian 4 Melbourne sensors                 24   72      all (4,271) none
macrodata  12 US macro series, quarterly       8    16      all (203)   none
vic_elec   demand (one series: CRPS only)      48   96      last 365 d  temperature, holiday
========== =================================== ==== ======= =========== ======================

Splits: the last ``windows`` (7; macrodata 5) forecast windows of ``H`` steps tile the end of
the kept rows (stride ``H``); every model trains once on all kept rows before the first window
and forecasts every window from the rows before it. Same context length, horizon, 100 sample
paths and covariates for every model; calendar features come from snfseq's ``calendar``
option and from GluonTS's own time features of the frequency.

Models: snfseq ``FlowForecaster`` (GRU-NF with its defaults: GRU 2 x 40, 3 affine couplings
100 x 100; one series gets its spline flow), snfseq ``GaussianGRUForecaster`` (DeepAR-like,
GRU 2 x 40), snfseq ``SeasonalNaiveForecaster`` (bootstrapped seasonal errors) and
``RandomWalkForecaster``; GluonTS ``DeepAREstimator`` (torch: LSTM 2 x 40, Student-t, an
embedding of the series, lags ``[1, 2, 3, m - 1, m, m + 1]`` for a season of ``m`` steps, so
it reads ``context + m + 1`` steps back) and ``SeasonalNaivePredictor`` (one path: its CRPS is
the MAE of its point forecast and its intervals have zero width).

Budget of the learned models: the same optimiser steps ``epochs x batches`` (an epoch is
``ceil(N / 64)`` batches, ``N`` the training windows; EPF_FR_BE 4 x 133, pedestrian 6 x 63,
macrodata 100 x 3, vic_elec 2 x 267) and the same windows per step: 64 windows of all ``D``
series (the flow: 64 rows of ``D`` values; the univariate GRU and DeepAR: ``64 D`` rows of one
series). No early stopping (snfseq ``val_fraction=0``; DeepAR keeps its epoch of lowest
training loss, GluonTS's default; its transformed training data is cached). DeepAR gets the
covariates standardised with the training rows' mean and spread, as snfseq standardises them
inside.

Scores (:func:`snfseq.forecasting.backtesting.score_windows`, the same code for every model's
sample tensor ``[S, K, H, D]``): CRPS per series, averaged; energy score and variogram score
(order 0.5) joint over horizon x series; coverage of the central 50 % / 90 % intervals. Each
score also scale-free (``_sf``): every series divided by the mean absolute value of its test
target first (``wCRPS`` = CRPS / mean |y|, as GluonTS's weighted quantile loss), so that
macrodata's GDP does not dominate. Learned models and the sampling baselines run with 3 seeds
(a seed sets the initial weights, the training order and the sampling); tables give the mean
and standard deviation over seeds. Fit time: training; predict time: 100 paths for every
window, through each library's public predict (a call per window, all series at once); for
the learned models also every window in one call (snfseq ``predict_batch``; GluonTS
``predictor.predict`` of one dataset holding every window's entries, which it batches), timed
only (the scores come from the per-window calls).

Run: ``python benchmarks/bench_forecasting.py [--quick] [--threads N]``; writes
``results/forecasting.json`` and ``forecasting.md`` (``--quick``: 2 windows, 1 epoch of at
most 4 batches, 1 seed, ``forecasting_quick.*``). ``--datasets`` or ``--models`` run a subset
and only print it. Torch threads: ``--threads`` (default 2) for both libraries. The full run
takes about 23 minutes on 2 cores (from full-size epochs timed at 1 thread: 60-140 ms per
optimiser step and model). With other processes on the cores, 2 OpenMP threads can be many
times slower than 1 (the quick EPF_FR_BE + macrodata run: 8 s at 1 thread, 150-190 s at 2
under a load of 2-3): pass ``--threads 1`` unless the cores are idle.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from machine import cpu_name
from torch import Tensor

from snfseq.data import load_series
from snfseq.files import atomic_write
from snfseq.forecasting import (
    FlowForecaster,
    GaussianGRUForecaster,
    RandomWalkForecaster,
    SeasonalNaiveForecaster,
)
from snfseq.forecasting.backtesting import score_windows, window_cutoffs

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
FLOW, GRU, NAIVE, WALK = "GRU-NF (snfseq)", "Gaussian GRU (snfseq)", "seasonal naive", "random walk"
DEEPAR, GLUON_NAIVE = "DeepAR (GluonTS)", "seasonal naive (GluonTS, 1 path)"
MODELS = (FLOW, GRU, NAIVE, WALK, DEEPAR, GLUON_NAIVE)
LEARNED = (FLOW, GRU, DEEPAR)
#: Scores where lower is better, each also scale-free (``<name>_sf``).
SCORES = ("crps", "energy_score", "variogram_score")
COVERAGES = {"coverage_50": 0.5, "coverage_90": 0.9}
BATCH_WINDOWS = 64
QUICK_BATCHES = 4


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset's split and the learned models' budget.

    Attributes:
        name: A :data:`snfseq.data.SERIES_DATASETS` name.
        horizon: Steps per forecast window ``H``.
        context: Steps every forecast conditions on.
        windows: Test windows ``K``, ``H`` apart, ending with the kept rows.
        rows: Most recent rows kept (None: all).
        steps: Optimiser steps of each learned model (rounded to whole epochs).
    """

    name: str
    horizon: int
    context: int
    windows: int
    rows: int | None
    steps: int


FULL = (
    DatasetSpec("EPF_FR_BE", 24, 72, 7, 24 * 365, 500),
    DatasetSpec("pedestrian", 24, 72, 7, None, 400),
    DatasetSpec("macrodata", 8, 16, 5, None, 300),
    DatasetSpec("vic_elec", 48, 96, 7, 48 * 365, 500),
)


def quick(spec: DatasetSpec) -> DatasetSpec:
    """The ``--quick`` version: 2 windows and one epoch of at most 4 batches (the most recent
    training windows)."""
    rows = spec.context + spec.horizon - 1 + QUICK_BATCHES * BATCH_WINDOWS + 2 * spec.horizon
    return replace(spec, windows=2, rows=rows, steps=1)


@dataclass
class Split:
    """The data every model sees: ``target: DataFrame[T, D]``, ``covariates: DataFrame[T, C]``
    or None, and the window origins (window ``k`` forecasts rows ``cutoffs[k]`` to
    ``cutoffs[k] + H - 1`` from the rows before)."""

    spec: DatasetSpec
    target: pd.DataFrame
    covariates: pd.DataFrame | None
    cutoffs: list[int]
    freq: str
    season: int

    @property
    def train_windows(self) -> int:
        """Training windows (``context + H`` steps) before the first test window."""
        return self.cutoffs[0] - (self.spec.context + self.spec.horizon) + 1

    @property
    def test_scale(self) -> np.ndarray:
        """``Array[D]``: each series' mean absolute value over the test windows."""
        values, horizon = self.target.to_numpy(), self.spec.horizon
        return np.abs(np.concatenate([values[c : c + horizon] for c in self.cutoffs])).mean(0)


def load_split(spec: DatasetSpec) -> Split:
    """The kept rows of ``spec``'s dataset and its window origins."""
    data = load_series(spec.name)
    keep = slice(-spec.rows, None) if spec.rows else slice(None)
    target = data.target.iloc[keep]
    covariates = None if data.covariates is None else data.covariates.iloc[keep]
    cutoffs = window_cutoffs(
        len(target), spec.horizon, spec.windows, spec.horizon, spec.context + spec.horizon
    )
    return Split(spec, target, covariates, cutoffs, data.freq, data.season)


@dataclass
class Budget:
    """A learned model's training: ``epochs`` of ``batches`` optimiser steps, each on
    ``BATCH_WINDOWS`` windows, i.e. ``rows_per_batch`` rows of the model's own layout."""

    epochs: int
    batches: int
    rows_per_batch: int

    @property
    def steps(self) -> int:
        """Planned optimiser steps."""
        return self.epochs * self.batches


def budget(split: Split, joint: bool) -> Budget:
    """The same steps and windows per step for every learned model (see the module);
    ``joint``: a row holds every series (the flow), else one series."""
    batches = math.ceil(split.train_windows / BATCH_WINDOWS)
    epochs = max(1, round(split.spec.steps / batches))
    series = split.target.shape[1]
    return Budget(epochs, batches, BATCH_WINDOWS * (1 if joint else series))


@dataclass
class Run:
    """One model's forecasts of every window, ``samples: Tensor[S, K, H, D]``, its times in
    seconds and what its training got."""

    samples: Tensor
    fit_s: float
    predict_s: float
    training: dict[str, Any]
    predict_all_s: float | None = None  # every window in one batched call


# ---------------------------------------------------------------------------- snfseq


def run_snfseq(model: str, split: Split, seed: int, samples: int) -> Run:
    """Fits one of snfseq's forecasters on the rows before the first window (the learned ones
    with their :func:`budget`) and forecasts every window through ``predict``."""
    spec, target, covariates = split.spec, split.target, split.covariates
    horizon, context = spec.horizon, spec.context
    forecaster: Any
    options: dict[str, Any] = {}
    if model == FLOW:
        forecaster = FlowForecaster(horizon, context)
        plan = budget(split, joint=True)
        options = {"epochs": plan.epochs, "batch_size": plan.rows_per_batch, "val_fraction": 0.0}
    elif model == GRU:
        forecaster = GaussianGRUForecaster(horizon, context)
        plan = budget(split, joint=False)
        options = {"epochs": plan.epochs, "batch_size": plan.rows_per_batch}
    elif model == NAIVE:
        forecaster, covariates = SeasonalNaiveForecaster(horizon, season_length=split.season), None
    elif model == WALK:
        forecaster, covariates = RandomWalkForecaster(horizon), None
    else:
        raise ValueError(f"model {model!r} is not one of snfseq's {(FLOW, GRU, NAIVE, WALK)}")
    first = split.cutoffs[0]
    tic = time.perf_counter()
    forecaster.fit(
        target.iloc[:first],
        None if covariates is None else covariates.iloc[:first],
        progress=False,
        seed=seed,
        **options,
    )
    fit_s = time.perf_counter() - tic
    training: dict[str, Any] = {}
    if options:
        epochs = len(forecaster.fit_history_.train_loss)
        training = {"epochs": epochs, "batches_per_epoch": plan.batches}
        training |= {"steps": epochs * plan.batches, "rows_per_batch": plan.rows_per_batch}
    drawn = []
    tic = time.perf_counter()
    for k, cutoff in enumerate(split.cutoffs):
        known = None if covariates is None else covariates.iloc[: cutoff + horizon]
        prediction = forecaster.predict(
            target.iloc[:cutoff], known, num_samples=samples, seed=1000 * seed + k
        )
        drawn.append(prediction.samples)
    predict_s = time.perf_counter() - tic
    predict_all_s = None
    if options:  # the learned models: every window in one predict_batch call, timed only
        tic = time.perf_counter()
        forecaster.predict_batch(
            [target.iloc[:cutoff] for cutoff in split.cutoffs],
            None
            if covariates is None
            else [covariates.iloc[: cutoff + horizon] for cutoff in split.cutoffs],
            num_samples=samples,
            seed=seed,
        )
        predict_all_s = time.perf_counter() - tic
    return Run(torch.cat(drawn, 1), fit_s, predict_s, training, predict_all_s)


# ---------------------------------------------------------------------------- GluonTS


def _quiet_gluonts() -> None:
    """Silences lightning's and GluonTS's start-up logs and their deprecation warnings."""
    for module in ("gluonts", "lightning"):
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
        warnings.filterwarnings("ignore", category=UserWarning, module=module)
    # Importing lightning sets its loggers' level: quiet them after.
    import gluonts  # noqa: F401
    import lightning.pytorch  # noqa: F401

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "gluonts"):
        logging.getLogger(name).setLevel(logging.ERROR)


def gluonts_frames(split: Split) -> dict[str, pd.DataFrame]:
    """One frame per series for GluonTS, ``target`` and the covariates (standardised with the
    training rows' mean and spread), on a regular naive ``PeriodIndex``.

    A time-zone-aware index becomes wall-clock time counted back from the last row in regular
    steps (GluonTS needs a regular naive index): the test windows get their local hours, rows
    before a daylight-saving change in the kept rows sit one hour off.
    """
    index = split.target.index
    if isinstance(index, pd.DatetimeIndex):
        last = index[-1].tz_localize(None) if index.tz is not None else index[-1]
        index = pd.period_range(end=last, periods=len(index), freq=split.freq)
    covariates = split.covariates
    if covariates is not None:
        train = covariates.iloc[: split.cutoffs[0]]
        spread = train.std()
        covariates = (covariates - train.mean()) / spread.where(spread > 0, 1.0)
    frames = {}
    for column in split.target.columns:
        frame = pd.DataFrame({"target": split.target[column].to_numpy()}, index=index)
        if covariates is not None:
            for name in covariates.columns:
                frame[name] = covariates[name].to_numpy()
        frames[str(column)] = frame.astype(np.float32)
    return frames


def _dataset(frames: dict[str, pd.DataFrame], end: int, future: int) -> Any:
    """GluonTS dataset of every series over rows ``[:end]``, whose last ``future`` rows only
    the covariates keep (the rows to forecast)."""
    from gluonts.dataset.pandas import PandasDataset

    names = list(frames)
    dynamic = [c for c in frames[names[0]].columns if c != "target"]
    return PandasDataset(
        [(name, frames[name].iloc[:end]) for name in names],
        target="target",
        feat_dynamic_real=dynamic or None,
        static_features=pd.DataFrame(
            {"series": pd.Categorical(names, categories=names)}, index=names
        ),
        future_length=future,
        freq=frames[names[0]].index.freqstr,
    )


def _forecast_windows(
    split: Split, frames: dict[str, pd.DataFrame], predict: Callable[[Any], Iterable[Any]]
) -> Tensor:
    """``Tensor[S, K, H, D]`` of a GluonTS predictor over every window."""
    horizon = split.spec.horizon
    per_window = []
    for cutoff in split.cutoffs:
        forecasts = predict(_dataset(frames, cutoff + horizon, horizon))
        paths = [torch.as_tensor(np.asarray(f.samples), dtype=torch.float32) for f in forecasts]
        per_window.append(torch.stack(paths, -1))  # [S, H, D]
    return torch.stack(per_window, 1)


def lags(season: int) -> list[int]:
    """DeepAR's short lag set: the last three steps and one season back (+-1)."""
    return sorted({1, 2, 3, max(1, season - 1), season, season + 1})


def run_deepar(split: Split, seed: int, samples: int) -> Run:
    """Trains GluonTS's torch DeepAR with the flow's :func:`budget` of steps and forecasts
    every window."""
    _quiet_gluonts()
    import lightning.pytorch as pl
    from gluonts.torch.model.deepar import DeepAREstimator

    spec, plan = split.spec, budget(split, joint=False)
    frames = gluonts_frames(split)
    covariates = 0 if split.covariates is None else split.covariates.shape[1]
    with tempfile.TemporaryDirectory(prefix="bench-deepar-") as folder:
        estimator = DeepAREstimator(
            freq=frames[next(iter(frames))].index.freqstr,
            prediction_length=spec.horizon,
            context_length=spec.context,
            num_layers=2,
            hidden_size=40,
            dropout_rate=0.1,
            num_feat_dynamic_real=covariates,
            num_feat_static_cat=1,
            cardinality=[len(frames)],
            lags_seq=lags(split.season),
            scaling=True,
            num_parallel_samples=samples,
            batch_size=plan.rows_per_batch,
            num_batches_per_epoch=plan.batches,
            trainer_kwargs={
                "max_epochs": plan.epochs,
                "accelerator": "cpu",
                "default_root_dir": folder,
                "enable_progress_bar": False,
                "enable_model_summary": False,
                "logger": False,
            },
        )
        pl.seed_everything(seed, verbose=False)
        tic = time.perf_counter()
        output = estimator.train_model(_dataset(frames, split.cutoffs[0], 0), cache_data=True)
        fit_s = time.perf_counter() - tic
    training = {
        "epochs": int(output.trainer.current_epoch),
        "batches_per_epoch": plan.batches,
        "steps": int(output.trainer.global_step),
        "rows_per_batch": plan.rows_per_batch,
        "lags": lags(split.season),
    }
    pl.seed_everything(seed, verbose=False)
    tic = time.perf_counter()
    drawn = _forecast_windows(split, frames, output.predictor.predict)
    predict_s = time.perf_counter() - tic
    # Every window's entries in one dataset: GluonTS batches them (timed only).
    horizon = split.spec.horizon
    every = [e for c in split.cutoffs for e in _dataset(frames, c + horizon, horizon)]
    tic = time.perf_counter()
    for forecast in output.predictor.predict(every):
        np.asarray(forecast.samples)
    return Run(drawn, fit_s, predict_s, training, time.perf_counter() - tic)


def run_gluonts_naive(split: Split) -> Run:
    """GluonTS's seasonal naive predictor: one path per window, its point forecast."""
    _quiet_gluonts()
    from gluonts.model.seasonal_naive import SeasonalNaivePredictor

    predictor = SeasonalNaivePredictor(split.spec.horizon, season_length=split.season)
    frames = gluonts_frames(split)
    tic = time.perf_counter()
    drawn = _forecast_windows(split, frames, predictor.predict)
    return Run(drawn, 0.0, time.perf_counter() - tic, {})


def run_model(model: str, split: Split, seed: int, samples: int) -> Run:
    """Any of :data:`MODELS` on ``split``."""
    if model == DEEPAR:
        return run_deepar(split, seed, samples)
    if model == GLUON_NAIVE:
        return run_gluonts_naive(split)
    return run_snfseq(model, split, seed, samples)


# ---------------------------------------------------------------------------- scores


def score(split: Split, samples: Tensor) -> dict[str, float]:
    """Mean scores of ``samples: Tensor[S, K, H, D]`` over the windows (and steps and series
    for the per-entry ones), in data units and scale-free (``_sf``, see the module)."""
    scale = split.test_scale
    tables = {
        "": score_windows("m", split.target, split.cutoffs, samples),
        "_sf": score_windows(
            "m",
            split.target / scale,
            split.cutoffs,
            samples / torch.as_tensor(scale, dtype=samples.dtype),
        ),
    }
    result = {}
    for suffix, table in tables.items():
        means = table.groupby("metric")["value"].mean()
        for name in SCORES:
            result[name + suffix] = float(means[name])
    means = tables[""].groupby("metric")["value"].mean()
    for name in COVERAGES:
        result[name] = float(means[name])
    return result


def benchmark(
    specs: Iterable[DatasetSpec], models: Iterable[str], seeds: int, samples: int
) -> list[dict[str, Any]]:
    """One row per dataset, model and seed: scores, times and training, or the error."""
    rows = []
    for spec in specs:
        split = load_split(spec)
        for model in models:
            for seed in range(1 if model == GLUON_NAIVE else seeds):
                row: dict[str, Any] = {"dataset": spec.name, "model": model, "seed": seed}
                try:
                    run = run_model(model, split, seed, samples)
                    row |= score(split, run.samples)
                    row |= {"fit_s": run.fit_s, "predict_s": run.predict_s}
                    if run.predict_all_s is not None:
                        row["predict_all_s"] = run.predict_all_s
                    row |= {"samples": run.samples.shape[0], "training": run.training}
                except Exception as error:  # noqa: BLE001 - recorded in the table
                    traceback.print_exc(file=sys.stderr)
                    reason = str(error).splitlines()[0] if str(error) else ""
                    row["error"] = f"{type(error).__name__}: {reason}"[:160]
                rows.append(row)
                done = row.get("error") or f"wCRPS {row['crps_sf']:.4f}, fit {row['fit_s']:.1f} s"
                print(f"{spec.name:>10} | {model:<34} seed {seed}: {done}", flush=True)
    return rows


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds of every number, per dataset and model; a model
    with a failed seed keeps that seed's error instead."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["model"]), []).append(row)
    summary = []
    for (dataset, model), runs in groups.items():
        entry: dict[str, Any] = {"dataset": dataset, "model": model, "seeds": len(runs)}
        failed = [run["error"] for run in runs if "error" in run]
        if failed:
            entry["error"] = failed[0]
        else:
            for key in (*[s + x for s in SCORES for x in ("", "_sf")], *COVERAGES):
                entry[key] = _spread([run[key] for run in runs])
            entry["fit_s"] = _spread([run["fit_s"] for run in runs])
            entry["predict_s"] = _spread([run["predict_s"] for run in runs])
            if "predict_all_s" in runs[0]:
                entry["predict_all_s"] = _spread([run["predict_all_s"] for run in runs])
            entry["training"] = runs[0]["training"]
        summary.append(entry)
    return summary


def _spread(values: list[float]) -> dict[str, float]:
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "sd": deviation}


def winners(summary: list[dict[str, Any]], dataset: str) -> dict[str, str]:
    """The best model of ``dataset`` per score (coverage: closest to its level)."""
    done = [e for e in summary if e["dataset"] == dataset and "error" not in e]
    best = {}
    for key in [s + x for s in SCORES for x in ("", "_sf")]:
        best[key] = min(done, key=lambda e: e[key]["mean"])["model"]
    for key, level in COVERAGES.items():
        best[key] = min(done, key=lambda e: abs(e[key]["mean"] - level))["model"]
    return best


def goals(summary: list[dict[str, Any]], splits: dict[str, Split]) -> list[str]:
    """The issue's goals, checked on every dataset: (a) the flow wins energy and variogram
    scores where there is more than one series, (b) its CRPS is within 5 % of the best,
    (c) it predicts faster than DeepAR. Lines of markdown: the goals, then each dataset."""
    entries = {(e["dataset"], e["model"]): e for e in summary}
    checks: dict[str, dict[str, tuple[str, ...]]] = {
        "a": {
            "data units": ("energy_score", "variogram_score"),
            "scale-free": ("energy_score_sf", "variogram_score_sf"),
        },
        "b": {"wCRPS": ("crps_sf",), "CRPS": ("crps",)},
        "c": {"": ()},
        "c1": {"": ()},
    }
    failed: dict[tuple[str, str], list[str]] = {(g, v): [] for g in checks for v in checks[g]}
    lines = []
    for name, split in splits.items():
        joint = split.target.shape[1] > 1
        flow, deepar = entries.get((name, FLOW)), entries.get((name, DEEPAR))
        if flow is None or "error" in flow:
            reason = "not run" if flow is None else flow["error"]
            lines.append(f"- **{name}**: the flow has no scores ({reason})")
            for goal, variant in failed:
                if goal != "a" or joint:
                    failed[(goal, variant)].append(name)
            continue
        others = [
            e for e in summary if e["dataset"] == name and e["model"] != FLOW and "error" not in e
        ]
        if not others:
            lines.append(f"- **{name}**: no other model to compare with")
            continue
        parts = []
        for goal, variant in failed:
            if goal in ("c", "c1") or (goal == "a" and not joint):
                continue
            for key in checks[goal][variant]:
                rival = min(others, key=lambda e: e[key]["mean"])
                ratio = flow[key]["mean"] / rival[key]["mean"]
                if not (ratio < 1 if goal == "a" else ratio <= 1.05):
                    if name not in failed[(goal, variant)]:
                        failed[(goal, variant)].append(name)
                parts.append(f"({goal}) {_label(key)} {ratio:.3f} vs {rival['model']}")
        if deepar is None or "error" in deepar:
            failed[("c", "")].append(name)
            failed[("c1", "")].append(name)
            parts.append("(c) DeepAR has no predict time")
        else:
            mine, theirs = flow["predict_s"]["mean"], deepar["predict_s"]["mean"]
            if mine >= theirs:
                failed[("c", "")].append(name)
            parts.append(
                f"(c) predict {mine:.2f} s vs DeepAR {theirs:.2f} s ({mine / theirs:.2f}x)"
            )
            if "predict_all_s" in flow and "predict_all_s" in deepar:
                mine, theirs = flow["predict_all_s"]["mean"], deepar["predict_all_s"]["mean"]
                if mine >= theirs:
                    failed[("c1", "")].append(name)
                parts.append(
                    f"(c, one call) {mine:.2f} s vs DeepAR {theirs:.2f} s ({mine / theirs:.2f}x)"
                )
        lines.append(f"- **{name}**: " + "; ".join(parts))

    def status(goal: str) -> str:
        states = []
        for variant in checks[goal]:
            names = failed[(goal, variant)]
            state = "**MET**" if not names else f"**NOT MET** ({', '.join(names)})"
            states.append(f"{variant}: {state}" if variant else state)
        return "; ".join(states)

    return [
        "- (a) the flow wins the energy and the variogram score on every dataset with more "
        f"than one series: {status('a')}",
        f"- (b) the flow's CRPS within 5 % of the best CRPS on every dataset: {status('b')}",
        "- (c) the flow's predict time (100 paths, every window) below DeepAR's on every "
        f"dataset: {status('c')}; with every window in one call (snfseq `predict_batch`, "
        f"GluonTS one dataset of every window): {status('c1')}",
        "",
        "Per dataset: the flow's score divided by the best other model's (below 1: the flow "
        "wins; (a) needs < 1, (b) <= 1.05):",
        "",
        *lines,
    ]


_LABELS = {
    "crps": "CRPS",
    "crps_sf": "wCRPS",
    "energy_score": "ES",
    "energy_score_sf": "ES sf",
    "variogram_score": "VS",
    "variogram_score_sf": "VS sf",
    "coverage_50": "cov 50",
    "coverage_90": "cov 90",
}
COLUMNS = tuple(_LABELS)


def _label(key: str) -> str:
    return _LABELS[key]


def _cell(value: dict[str, float], digits: int = 4) -> str:
    mean, deviation = value["mean"], value["sd"]
    return f"{mean:.{digits}g}" + (f" ± {deviation:.2g}" if deviation else "")


def _training(entry: dict[str, Any]) -> str:
    run = entry.get("training") or {}
    if not run:
        return "-"
    return (
        f"{run['epochs']} x {run['batches_per_epoch']} = {run['steps']} "
        f"({run['rows_per_batch']} rows)"
    )


def markdown(result: dict[str, Any], splits: dict[str, Split]) -> str:
    """The report: setup, the verdict, the winners and one table per dataset."""
    m, s = result["machine"], result["settings"]
    lines = [
        "# Forecasting: snfseq vs GluonTS DeepAR on four real datasets",
        "",
        f"Machine: {m['cpu']}, {m['cpu_count']} CPUs; torch threads (both libraries): "
        f"{m['torch_threads']}; torch {m['torch']}, GluonTS {m['gluonts']}, lightning "
        f"{m['lightning']}, Python {m['python']}. Run time {result['run_minutes']:.1f} min"
        f"{' (--quick: not a result)' if s['quick'] else ''}.",
        "",
        f"{s['samples']} sample paths per window. Seeds of the learned models and the sampling "
        f"baselines: {s['seeds']} (mean ± sd over seeds; GluonTS's seasonal naive is "
        "deterministic, 1 run). Every model: the same rows, context, horizon and covariates; "
        "trained once on all rows before the first test window (see the script's docstring "
        "for the budget rule: same optimiser steps and windows per step for the three learned "
        "models).",
        "",
        "Scores: CRPS (per series, averaged), ES = energy score and VS = variogram score "
        "(order 0.5) joint over horizon x series, lower is better; 'sf' and wCRPS: scale-free, "
        "each series divided by the mean |y| of its test target before scoring (wCRPS = "
        "CRPS / mean |y|). Coverage of the central 50 % / 90 % intervals (best: nearest the "
        "level). GluonTS seasonal naive has one path: its CRPS is the MAE of its point "
        "forecast, its intervals have zero width. Fit and predict in seconds (predict: 100 "
        "paths for every window).",
        "",
        "| dataset | series | rows kept | train rows (windows) | test windows | H | context "
        "| covariates |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for name, split in splits.items():
        index = split.target.index
        covariates = "none" if split.covariates is None else ", ".join(split.covariates.columns)
        lines.append(
            f"| {name} | {split.target.shape[1]} | {index[0]} to {index[-1]} | "
            f"{split.cutoffs[0]} ({split.train_windows}) | {len(split.cutoffs)} from "
            f"{index[split.cutoffs[0]]} | {split.spec.horizon} | {split.spec.context} | "
            f"{covariates} |"
        )
    summary = result["summary"]
    lines += ["", "## Verdict", "", *goals(summary, splits), "", "## Winners", ""]
    lines += ["| dataset | " + " | ".join(_label(k) for k in COLUMNS) + " |"]
    lines += ["|---|" + "---|" * len(COLUMNS)]
    for name, split in splits.items():
        if not any(e["dataset"] == name and "error" not in e for e in summary):
            continue
        best = winners(summary, name)
        single = split.target.shape[1] == 1
        cells = ["-" if single and _joint(k) else best[k] for k in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name, split in splits.items():
        single = split.target.shape[1] == 1
        lines += ["", f"## {name}", ""]
        if single:
            lines += ["One series: ES and VS left out (CRPS only); they are in the JSON.", ""]
        keys = [k for k in COLUMNS if not (single and _joint(k))]
        lines.append(
            "| model | " + " | ".join(_label(k) for k in keys) + " | fit s | predict s "
            "| predict, one call s | training epochs x batches |"
        )
        lines.append("|---|" + "---:|" * (len(keys) + 3) + "---|")
        for entry in (e for e in summary if e["dataset"] == name):
            if "error" in entry:
                cells = [f"n/a ({entry['error']})"] + ["n/a"] * (len(keys) + 3) + ["-"]
            else:
                cells = [_cell(entry[k]) for k in keys]
                cells += [_cell(entry["fit_s"], 3), _cell(entry["predict_s"], 3)]
                one_call = entry.get("predict_all_s")
                cells += ["-" if one_call is None else _cell(one_call, 3), _training(entry)]
            lines.append(f"| {entry['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _joint(key: str) -> bool:
    return key.startswith(("energy", "variogram"))


def machine() -> dict[str, Any]:
    """The CPU, threads and library versions."""
    versions = {}
    for package in ("gluonts", "lightning"):
        try:
            versions[package] = __import__(package).__version__
        except ImportError:
            versions[package] = "not installed"
    return {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "python": platform.python_version(),
        **versions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 windows, 1 short epoch, 1 seed")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (both libraries)")
    parser.add_argument("--seeds", type=int, default=None, help="default 3 (--quick: 1)")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--datasets", nargs="+", default=None, help="a subset; writes nothing")
    parser.add_argument("--models", nargs="+", default=None, help="a subset; writes nothing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    specs = [quick(spec) if args.quick else spec for spec in FULL]
    if args.datasets:
        specs = [spec for spec in specs if spec.name in args.datasets]
    models = [m for m in MODELS if not args.models or m in args.models]
    seeds = args.seeds or (1 if args.quick else 3)
    tic = time.perf_counter()
    rows = benchmark(specs, models, seeds, args.samples)
    splits = {spec.name: load_split(spec) for spec in specs}
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    result = {
        "head": head,
        "machine": machine(),
        "run_minutes": (time.perf_counter() - tic) / 60,
        "settings": {
            "quick": args.quick,
            "seeds": seeds,
            "samples": args.samples,
            "batch_windows": BATCH_WINDOWS,
            "datasets": [asdict(spec) for spec in specs],
        },
        "summary": aggregate(rows),
        "runs": rows,
    }
    report = markdown(result, splits)
    print(report)
    if args.datasets or args.models:
        return
    suffix = "_quick" if args.quick else ""
    RESULTS.mkdir(exist_ok=True)
    with atomic_write(RESULTS / f"forecasting{suffix}.json") as partial:
        partial.write_text(json.dumps(result, indent=2, default=str))
    with atomic_write(RESULTS / f"forecasting{suffix}.md") as partial:
        partial.write_text(report)


if __name__ == "__main__":
    main()
