"""Sampling autoregressive flows (MAF, NSF) by Jacobi sweeps, against coupling flows.

An autoregressive layer is inverted (the sampling direction) by sweeps ``x <- f^-1(y | x)``;
zuko runs all ``D`` of them, snfseq stops once no coordinate moves by more than
``ConditionalFlow.inverse_tolerance`` (:mod:`snfseq.jacobi`). Measured in one run on trained
models of the same size (D = 60: the face mesh of both bundled videos in a 60-component PCA
layout; GRU 3 x 512; 5 layers with conditioners 3 x 512 as the paper's RealNVP; trained for
``epochs`` epochs on every window of both videos, context 8 -> 16):

* forecast step time, S = 100 samples, one series (``(t(H=16) - t(H=1)) / 15``, median of
  repeats, round-robin over the variants): RealNVP; MAF and NSF with every sweep (zuko's
  sequential inverse) and with early stopping at the tolerance;
* sweeps per layer at the tolerance (mean and max over the 16 steps' calls);
* the largest difference between early-stopped and sequential samples (same noise), and the
  NLL of the last 64 training windows (the models are only checked to be trained, not
  compared: there is no held-out split here).

Run: ``python benchmarks/bench_autoregressive.py [--quick] [--threads N]``; writes
``results/autoregressive.json`` and ``.md`` (``_quick`` with ``--quick``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from machine import arguments, describe, log, step_times, write_report

import snfseq.flows
from snfseq import SequenceFlow, data
from snfseq.jacobi import jacobi_inverse


@dataclass(frozen=True)
class Settings:
    features: int = 60
    hidden: int = 512
    layers: int = 3
    width: int = 512
    transforms: int = 5
    epochs: int = 6
    samples: int = 100
    horizon: int = 16
    repeats: int = 5
    tolerance: float = 1e-5


QUICK = Settings(features=12, hidden=16, layers=1, width=16, transforms=2, epochs=1, repeats=2)


def train(kind: str, windows: torch.Tensor, settings: Settings) -> SequenceFlow:
    torch.manual_seed(0)
    model = SequenceFlow(
        features=settings.features,
        hidden=settings.hidden,
        layers=settings.layers,
        flow=kind,
        transforms=settings.transforms,
        flow_hidden=(settings.width,) * 3,
    )
    model.fit(windows, context=8, epochs=settings.epochs, batch_size=64, seed=0, progress=False)
    return model.eval()


class SweepCounter:
    """Records the sweeps of every Jacobi inversion while installed in ``snfseq.flows``."""

    def __init__(self) -> None:
        self.sweeps: list[int] = []

    def __call__(self, transform: Any, y: torch.Tensor, tolerance: float) -> Any:
        x, ladj, sweeps = jacobi_inverse(transform, y, tolerance)
        self.sweeps.append(sweeps)
        return x, ladj, sweeps


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = arguments(__doc__)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = QUICK if args.quick else Settings()
    started = time.perf_counter()
    sequences = data.face_sequences(layout=f"pca:{settings.features}", progress=False)
    windows = data.make_windows(sequences, 8, 16, stride=1)
    models = {}
    for kind in ("realnvp", "maf", "nsf"):
        log(f"training {kind}")
        tic = time.perf_counter()
        models[kind] = train(kind, windows, settings)
        log(f"  {time.perf_counter() - tic:.0f} s")
    context = windows[:1, :8]

    def forecaster(kind: str, tolerance: float) -> Callable[[int], Any]:
        def run(horizon: int) -> Any:
            models[kind].flow.inverse_tolerance = tolerance
            with torch.no_grad():
                return models[kind].forecast(context, horizon, settings.samples, seed=0)

        return run

    variants = {"realnvp": forecaster("realnvp", 0.0)}
    for kind in ("maf", "nsf"):
        variants[f"{kind} sequential"] = forecaster(kind, 0.0)
        variants[f"{kind} jacobi"] = forecaster(kind, settings.tolerance)
    log("timing")
    times = step_times(variants, settings.repeats)
    rows: dict[str, Any] = {}
    for kind in ("maf", "nsf"):
        counter = SweepCounter()
        original = snfseq.flows.jacobi_inverse
        snfseq.flows.jacobi_inverse = counter  # type: ignore[assignment]
        try:
            fast = variants[f"{kind} jacobi"](settings.horizon).samples
        finally:
            snfseq.flows.jacobi_inverse = original
        exact = variants[f"{kind} sequential"](settings.horizon).samples
        rows[kind] = {
            "sweeps_mean": statistics.fmean(counter.sweeps),
            "sweeps_max": max(counter.sweeps),
            "max_abs_difference": float((fast - exact).abs().max()),
            "max_abs_sample": float(exact.abs().max()),
            "training_nll": float(models[kind].nll(windows[-64:], context=8).mean()),
        }
    report = {
        "settings": asdict(settings),
        "machine": describe(args.threads),
        "seconds": time.perf_counter() - started,
        "ms_per_step": times,
        "jacobi": rows,
    }
    suffix = "_quick" if args.quick else ""
    write_report(args.out, f"autoregressive{suffix}", report, markdown(report))
    return report


def markdown(report: dict[str, Any]) -> str:
    s, m, times = report["settings"], report["machine"], report["ms_per_step"]
    base = times["realnvp"]
    lines = [
        "# Autoregressive flows sampled by Jacobi sweeps",
        "",
        f"{m['cpu']}, {m['threads']} torch threads, torch {m['torch']}; D = {s['features']}, "
        f"GRU {s['layers']} x {s['hidden']}, {s['transforms']} layers with conditioners "
        f"3 x {s['width']}, trained {s['epochs']} epochs on the face windows; S = "
        f"{s['samples']}, one series; median of {s['repeats']} round-robin repeats; tolerance "
        f"{s['tolerance']:g}; {report['seconds'] / 60:.1f} min.",
        "",
        "| flow | ms / forecast step | x RealNVP |",
        "|---|---:|---:|",
    ]
    for name, value in times.items():
        lines.append(f"| {name} | {value:.2f} | {value / base:.1f} |")
    lines += [
        "",
        "| flow | sweeps per layer (mean / max of D) | max abs difference vs sequential "
        "(largest sample) | NLL of 64 training windows |",
        "|---|---:|---:|---:|",
    ]
    for kind, row in report["jacobi"].items():
        lines.append(
            f"| {kind} | {row['sweeps_mean']:.1f} / {row['sweeps_max']} of {s['features']} | "
            f"{row['max_abs_difference']:.1e} ({row['max_abs_sample']:.2f}) | "
            f"{row['training_nll']:.3f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
