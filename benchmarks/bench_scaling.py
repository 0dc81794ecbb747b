"""How forecasting and training scale: samples S, horizon, features D and model size.

Measured in one run on this machine (untrained weights: latency does not depend on them),
one series, context 8:

* forecast latency and throughput against S (1 to 10,000) for GRU-NF, ``Refinement.paper()``
  and ``Refinement(kernel="mala")`` at the paper's size (D = 60, GRU 3 x 512, 5 couplings of
  3 x 512); one step is ``(t(H=16) - t(H=1)) / 15``; throughput is sample-steps per second;
* against the horizon (1 to 64 frames) at S = 100;
* against D (20 = 10 face keypoints, 60 = the paper's, 136 = 68 keypoints, 1,404 = the full
  face mesh in 3-D) at S = 100, for the paper-size model and a small one (GRU 1 x 128,
  couplings of (128, 128));
* training throughput (windows per second, batch 64, 24-frame windows, one epoch of random
  walks) and the peak resident memory (VmHWM) of a training process (a fresh subprocess per
  configuration, so that peaks do not mix), against D and model size.

Run: ``python benchmarks/bench_scaling.py [--quick] [--threads N]``; writes
``results/scaling.json``, ``.md`` and ``scaling.png`` (``_quick`` with ``--quick``).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from machine import arguments, describe, log, step_times, write_report

from snfseq import Refinement, SequenceFlow
from snfseq.files import atomic_write

REFINEMENTS = {
    "GRU-NF": None,
    "paper": Refinement.paper(),
    "mala": Refinement(kernel="mala"),
}


@dataclass(frozen=True)
class Settings:
    samples: tuple[int, ...] = (1, 10, 100, 1000, 10000)
    horizons: tuple[int, ...] = (1, 4, 16, 64)
    features: tuple[int, ...] = (20, 60, 136, 1404)
    sizes: tuple[str, ...] = ("small", "paper")
    repeats: int = 5
    train_batches: int = 8


QUICK = Settings(
    samples=(1, 10), horizons=(1, 4), features=(20,), sizes=("small",), repeats=1, train_batches=2
)
SIZES = {"small": (128, 1, 128), "paper": (512, 3, 512)}  # GRU width, GRU layers, flow width


def model(features: int, size: str) -> SequenceFlow:
    hidden, layers, width = SIZES[size]
    torch.manual_seed(0)
    flow_hidden = (width,) * (3 if size == "paper" else 2)
    net = SequenceFlow(
        features=features, hidden=hidden, layers=layers, transforms=5, flow_hidden=flow_hidden
    )
    net.normalizer.fitted.fill_(True)
    return net.eval()


def forecast_ms(net: SequenceFlow, samples: int, horizon: int, refinement: Any) -> float:
    context = torch.randn(1, 8, net.features).cumsum(1)
    with torch.no_grad():
        tic = time.perf_counter()
        net.forecast(context, horizon, samples, refinement=refinement, seed=0)
    return 1000 * (time.perf_counter() - tic)


def step_ms(net: SequenceFlow, samples: int, refinement: Any, repeats: int) -> float:
    """Median ms of one forecast step (:func:`machine.step_times`)."""
    run = lambda horizon: forecast_ms(net, samples, horizon, refinement)  # noqa: E731
    return step_times({"step": run}, repeats)["step"]


def train_probe(features: int, size: str, batches: int, threads: int) -> dict[str, float]:
    """Windows/s and peak RSS (MiB) of training, measured in a fresh subprocess (this script
    with ``--train-probe``)."""
    command = [sys.executable, __file__, "--train-probe", str(features), size, str(batches)]
    command += ["--threads", str(threads)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    rate, peak_kib = out.stdout.split()[-2:]
    return {"windows_per_s": float(rate), "peak_rss_mib": float(peak_kib) / 1024}


def _train_here(features: int, size: str, batches: int) -> None:
    """One epoch of ``batches`` batches of 64 random-walk windows; prints windows/s and the
    process's peak RSS in KiB."""
    net = model(features, size).train()
    windows = torch.randn(64 * batches, 24, features).cumsum(1)
    tic = time.perf_counter()
    net.fit(windows, context=8, epochs=1, batch_size=64, val_fraction=0.0, progress=False)
    elapsed = time.perf_counter() - tic
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
    status = Path("/proc/self/status").read_text().split("\n")
    peak_kib = next(line.split()[1] for line in status if line.startswith("VmHWM"))
    print(len(windows) / elapsed, peak_kib)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = arguments(__doc__)
    parser.add_argument("--train-probe", nargs=3, metavar=("D", "SIZE", "BATCHES"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.train_probe:
        features, size_name, batches = args.train_probe
        _train_here(int(features), size_name, int(batches))
        return {}
    settings = QUICK if args.quick else Settings()
    started = time.perf_counter()
    size = settings.sizes[-1]
    sample_features = 60 if not args.quick else settings.features[0]
    paper = model(sample_features, size)
    by_samples: dict[str, dict[str, float]] = {}
    for name, refinement in REFINEMENTS.items():
        for samples in settings.samples:
            log(f"S = {samples}, {name}")
            repeats = settings.repeats if samples < 1000 else min(2, settings.repeats)
            ms = step_ms(paper, samples, refinement, repeats)
            by_samples.setdefault(name, {})[str(samples)] = ms
    by_horizon: dict[str, float] = {}
    for horizon in settings.horizons:
        forecast_ms(paper, 100, horizon, None)  # warm-up
        by_horizon[str(horizon)] = forecast_ms(paper, 100, horizon, None)
    by_features: dict[str, dict[str, float]] = {}
    training: dict[str, dict[str, Any]] = {}
    for size_name in settings.sizes:
        for features in settings.features:
            log(f"D = {features}, {size_name}")
            net = model(features, size_name)
            by_features.setdefault(size_name, {})[str(features)] = step_ms(
                net, 100, None, settings.repeats
            )
            training.setdefault(size_name, {})[str(features)] = train_probe(
                features, size_name, settings.train_batches, args.threads
            )
    report = {
        "settings": asdict(settings),
        "machine": describe(args.threads),
        "this_process_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "seconds": time.perf_counter() - started,
        "model": f"{size}, D = {sample_features}",
        "step_ms_by_samples": by_samples,
        "forecast_ms_by_horizon": by_horizon,
        "step_ms_by_features": by_features,
        "training": training,
    }
    suffix = "_quick" if args.quick else ""
    write_report(args.out, f"scaling{suffix}", report, markdown(report))
    if not args.quick:
        plot(report, args.out / "scaling.png")
    return report


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    by_samples = report["step_ms_by_samples"]
    samples = list(next(iter(by_samples.values())))
    lines = [
        "# Scaling: samples, horizon, features, model size",
        "",
        f"{m['cpu']}, {m['threads']} torch threads, torch {m['torch']}; untrained weights, one "
        f"series, context 8; {report['seconds'] / 60:.1f} min.",
        "",
        f"## One forecast step against S ({report['model']}; paper: GRU 3 x 512, 5 couplings "
        "3 x 512; small: GRU 1 x 128, 5 couplings 2 x 128)",
        "",
        "| S | " + " | ".join(f"{name} ms" for name in by_samples) + " | GRU-NF sample-steps/s |",
        "|---:|" + "---:|" * (len(by_samples) + 1),
    ]
    for s in samples:
        cells = [f"{by_samples[name][s]:.2f}" for name in by_samples]
        rate = int(s) / (by_samples["GRU-NF"][s] / 1000)
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {rate:,.0f} |")
    lines += ["", f"## A whole forecast against the horizon (S = 100, GRU-NF, {report['model']})"]
    lines += [""]
    lines += ["| H | ms |", "|---:|---:|"]
    lines += [f"| {h} | {ms:.1f} |" for h, ms in report["forecast_ms_by_horizon"].items()]
    lines += ["", "## Against D (S = 100, GRU-NF) and training", ""]
    lines += [
        "| model | D | step ms | training windows/s | training peak RSS MiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for size, row in report["step_ms_by_features"].items():
        for features, ms in row.items():
            train = report["training"][size][features]
            lines.append(
                f"| {size} | {features} | {ms:.2f} | {train['windows_per_s']:.0f} | "
                f"{train['peak_rss_mib']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, row in report["step_ms_by_samples"].items():
        left.loglog([int(s) for s in row], list(row.values()), marker="o", label=name)
    left.set(xlabel="samples S", ylabel="ms per forecast step", title="paper size, D = 60")
    for size, row in report["step_ms_by_features"].items():
        right.loglog([int(d) for d in row], list(row.values()), marker="o", label=size)
    right.set(xlabel="features D", ylabel="ms per forecast step", title="GRU-NF, S = 100")
    for axis in (left, right):
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    fig.suptitle(f"Forecast step latency ({report['machine']['threads']} torch threads)")
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
