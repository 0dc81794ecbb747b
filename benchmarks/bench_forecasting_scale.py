"""Long histories and many series: peak memory and speed of `FlowForecaster` fit and predict.

Issue 9 asks that histories of 50,000 steps and up to the full face mesh (1,404 features) train
and predict with a peak memory under 4 GiB. Training windows are built a batch at a time
(:class:`snfseq.windows.Windows`) from the history kept once; every window held at once would
take ``N x L x C x 4`` bytes (20 GB for the third case below).

Cases, each in a fresh process (so that its peak resident memory is its own):

* ``vic_elec``: real, 52,608 half-hours of Victoria's electricity demand with the temperature
  as a covariate and calendar features; ``H`` = 48, context 96.
* ``face_mesh``: real, the full MediaPipe mesh (468 points x, y, z = 1,404 features) of the
  bundled wolfgang video; ``H`` = 8, context 16.
* ``mesh_50k``: 50,000 hourly steps of 1,404 series (synthetic Gaussian random walks, the only
  way to get both sizes at once: no bundled recording is that long), ``H`` = 24, context 48.

Each case trains ``FlowForecaster`` (its default sizes) for 2 epochs of 25 batches of 64
windows (``num_batches_per_epoch``, validation on at most 1,024 windows of the last 10 %), then
predicts 100 sample paths. Reported: process peak resident memory (``ru_maxrss``, torch and
all) and the memory before the fit, the floor (the history as float32, ``T x C x 4`` bytes) and
what the materialised windows would take, seconds per training batch, seconds to predict.
``torch.set_num_threads(2)``; run alone on the machine.

Run: ``python benchmarks/bench_forecasting_scale.py [--quick]``; writes
``results/forecasting_scale.json`` and ``.md`` (``--quick``: 5,000 steps, 2 x 3 batches, adds
``_quick``).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from machine import cpu_name

RESULTS = Path(__file__).parent / "results"
CASES = ("vic_elec", "face_mesh", "mesh_50k")
GIB = 2**30


def _rss() -> int:
    """Peak resident memory of this process so far, bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _case_data(case: str, quick: bool) -> tuple[pd.DataFrame, pd.DataFrame | None, int, int, str]:
    """The history, covariates, horizon, context and a description of one case."""
    from snfseq import data

    if case == "vic_elec":
        vic = data.load_series("vic_elec")
        steps = 5_000 if quick else len(vic.target)
        target, covariates = vic.target.iloc[-steps:], vic.covariates.iloc[-steps:]
        return target, covariates, 48, 96, "real: demand, temperature covariate"
    if case == "face_mesh":
        mesh = data.load_face("wolfgang", layout="mesh", coords=("x", "y", "z"), progress=False)
        values = mesh.values.reshape(mesh.sizes["time"], -1).astype(np.float64)
        frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(values.shape[1])])
        return frame, None, 8, 16, "real: wolfgang video, full mesh x, y, z"
    steps = 5_000 if quick else 50_000
    rng = np.random.default_rng(0)
    values = rng.standard_normal((steps, 1404), dtype=np.float32).cumsum(0) + 100
    index = pd.date_range("2020-01-01", periods=steps, freq="h")
    frame = pd.DataFrame(values, index=index, columns=[f"f{i}" for i in range(1404)])
    return frame, None, 24, 48, "synthetic Gaussian random walks"


def run_case(case: str, quick: bool) -> dict[str, Any]:
    """Fits and predicts one case in this process; returns its measurements."""
    from snfseq.forecasting import FlowForecaster

    torch.set_num_threads(2)
    target, covariates, horizon, context, source = _case_data(case, quick)
    # Warm up torch's lazily imported parts on a tiny fit, so that they do not count.
    FlowForecaster(2, 4, hidden=4, layers=1, transforms=1, flow_hidden=(4,)).fit(
        np.random.default_rng(0).normal(size=(40, 2)).cumsum(0), epochs=1, progress=False
    )
    before = _rss()
    forecaster = FlowForecaster(horizon, context)
    batches, epochs = (3, 2) if quick else (25, 2)
    started = time.perf_counter()
    history = target.iloc[:-horizon]  # the covariates cover the forecast steps too
    forecaster.fit(
        history,
        covariates,
        epochs=epochs,
        num_batches_per_epoch=batches,
        batch_size=64,
        progress=False,
        seed=0,
    )
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    prediction = forecaster.predict(history, covariates, num_samples=100, seed=0)
    predict_seconds = time.perf_counter() - started
    assert torch.isfinite(prediction.samples).all()
    steps, series = history.shape
    channels = series + forecaster.features_.width
    length = horizon + context
    return {
        "case": case,
        "source": source,
        "steps": steps,
        "series": series,
        "channels": channels,
        "horizon": horizon,
        "context": context,
        "flow": forecaster.model_.config.flow if forecaster.model_ else None,
        "batches": epochs * batches,
        "peak_gib": _rss() / GIB,
        "before_fit_gib": before / GIB,
        "history_gib": steps * channels * 4 / GIB,
        "materialised_gib": (steps - length + 1) * length * channels * 4 / GIB,
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
    }


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_name(),
        "threads": 2,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def markdown(result: dict[str, Any]) -> str:
    rows = result["cases"]
    lines = [
        "# Long histories and many series: FlowForecaster memory and speed",
        "",
        f"Machine: {result['machine']['cpu']}, torch {result['machine']['torch']}, "
        f"{result['machine']['threads']} threads, one case per process. Each case trains "
        "FlowForecaster (default sizes) on lazily built windows for the batches shown "
        "(64 windows each; fit s includes the validation of at most 1,024 windows after each "
        "epoch), then predicts 100 sample paths. Peak = the process's peak resident "
        "memory (torch included); history = the series and features as float32; materialised = "
        "every training window at once.",
        "",
        "| case | data | steps x channels | H / context | flow | peak GiB | before fit GiB | "
        "history GiB | materialised GiB | fit s | predict 100 paths s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['source']} | {r['steps']:,} x {r['channels']:,} | "
            f"{r['horizon']} / {r['context']} | {r['flow']} | {r['peak_gib']:.2f} | "
            f"{r['before_fit_gib']:.2f} | {r['history_gib']:.3f} | {r['materialised_gib']:.1f} | "
            f"{r['fit_seconds']:.1f} | {r['predict_seconds']:.2f} |"
        )
    worst = max(rows, key=lambda r: r["peak_gib"])
    verdict = "holds" if worst["peak_gib"] < 4 else "does NOT hold"
    lines += [
        "",
        f"Goal (peak memory under 4 GiB at 50,000 steps x 1,404 features) {verdict}: the "
        f"largest peak is {worst['peak_gib']:.2f} GiB ({worst['case']}), where the windows "
        f"held at once would take {worst['materialised_gib']:.1f} GiB.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="5,000 steps, 6 batches")
    parser.add_argument("--case", choices=CASES, help="run one case here and print its JSON")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.quick)))
        return
    from snfseq.files import atomic_write

    cases = []
    for case in CASES:
        command = [sys.executable, __file__, "--case", case] + (["--quick"] if args.quick else [])
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"case {case} failed:\n{done.stderr[-3000:]}")
        cases.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{case}: peak {cases[-1]['peak_gib']:.2f} GiB", flush=True)
    result = {"machine": machine(), "quick": args.quick, "cases": cases}
    suffix = "_quick" if args.quick else ""
    RESULTS.mkdir(exist_ok=True)
    with atomic_write(RESULTS / f"forecasting_scale{suffix}.json") as partial:
        partial.write_text(json.dumps(result, indent=2))
    text = markdown(result)
    with atomic_write(RESULTS / f"forecasting_scale{suffix}.md") as partial:
        partial.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
