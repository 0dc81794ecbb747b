"""Paired before/after latency of the paper-size forecast step: this tree against a git revision.

The revision's ``snfseq`` is extracted with ``git archive`` into a temporary folder and renamed
``snfseq_base``, so both versions run in one process on the same weights. Variants are timed
round-robin (base, then this tree, for every repeat), and each repeat gives a paired ratio
``new / base`` of the step time ``(t(H=16) - t(H=1)) / 15``; the table reports the median and
the interquartile range of those ratios. Before timing, both versions forecast with the same
seed and the largest difference of their samples is reported (0 when the change preserved
every draw).

Run: ``python benchmarks/bench_versus.py --base REV [--threads N] [--repeats R] [--quick]``;
writes ``results/versus_tN.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

from snfseq import Refinement, SequenceFlow

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def load_base(revision: str, folder: Path):  # noqa: ANN201
    """Imports ``snfseq`` as of ``revision`` under the name ``snfseq_base``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "snfseq"], check=True, capture_output=True
    ).stdout
    (folder / "snfseq.tar").write_bytes(archive)
    with tarfile.open(folder / "snfseq.tar") as tar:
        tar.extractall(folder, filter="data")
    (folder / "snfseq").rename(folder / "snfseq_base")
    pattern = re.compile(r"\b(from|import) snfseq(\.|\s|$)")
    for path in (folder / "snfseq_base").rglob("*.py"):
        text = pattern.sub(r"\1 snfseq_base\2", path.read_text())
        text = text.replace('import_module(f"snfseq.', 'import_module(f"snfseq_base.')
        path.write_text(text)
    sys.path.insert(0, str(folder))
    return importlib.import_module("snfseq_base")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="small model, few repeats")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.quick:
        features, width, samples, horizon, repeats = 12, 32, 10, 4, 2
    else:
        features, width, samples, horizon, repeats = 60, 512, 100, 16, args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        base = load_base(args.base, Path(tmp))
        options = dict(hidden=width, layers=3, transforms=5, flow_hidden=(width,) * 3)
        new = SequenceFlow(features=features, encoder_input="frames", **options).eval()
        old = base.SequenceFlow(features=features, encoder_input="frames", **options).eval()
        old.load_state_dict(new.state_dict())
        for model in (new, old):
            model.normalizer.fitted.fill_(True)
        old_refinement = base.Refinement
        variants = {
            "GRU-NF": (None, None),
            "paper (RWM)": (Refinement.paper(), old_refinement.paper()),
            "MALA": (Refinement(kernel="mala"), old_refinement(kernel="mala")),
            "MALA steps=3": (
                Refinement(kernel="mala", steps=3),
                old_refinement(kernel="mala", steps=3),
            ),
            "HMC (L=5)": (Refinement(kernel="hmc"), old_refinement(kernel="hmc")),
            "MALA pullback steps=3": (
                Refinement(kernel="mala", steps=3, intermediate="pullback"),
                old_refinement(kernel="mala", steps=3, intermediate="pullback"),
            ),
        }
        context = torch.randn(1, 8, features).cumsum(1)
        same_draws = {}
        for name, (mine, theirs) in variants.items():
            a = new.forecast(context, 4, samples, refinement=mine, seed=1).samples
            b = old.forecast(context, 4, samples, refinement=theirs, seed=1).samples
            same_draws[name] = float((a - b).abs().max())
        times = {(n, v, h): [] for n in variants for v in ("base", "new") for h in (1, horizon)}
        for _ in range(2):  # warm-up
            for mine, theirs in variants.values():
                new.forecast(context, horizon, samples, refinement=mine)
                old.forecast(context, horizon, samples, refinement=theirs)
        for _ in range(repeats):
            for name, (mine, theirs) in variants.items():
                for version, model, refinement in (("base", old, theirs), ("new", new, mine)):
                    for steps in (1, horizon):
                        tic = time.perf_counter()
                        model.forecast(context, steps, samples, refinement=refinement)
                        times[(name, version, steps)].append(time.perf_counter() - tic)

    def step(name: str, version: str, i: int | None = None) -> float:
        full, one = times[(name, version, horizon)], times[(name, version, 1)]
        if i is None:
            return 1000 * (statistics.median(full) - statistics.median(one)) / (horizon - 1)
        return (full[i] - one[i]) / (horizon - 1)

    rows = []
    for name in variants:
        ratios = [step(name, "new", i) / step(name, "base", i) for i in range(repeats)]
        quartiles = statistics.quantiles(ratios, n=4) if repeats > 1 else [ratios[0]] * 3
        rows.append(
            {
                "variant": name,
                "base_ms": step(name, "base"),
                "new_ms": step(name, "new"),
                "ratio_median": statistics.median(ratios),
                "ratio_q1": quartiles[0],
                "ratio_q3": quartiles[2],
                "max_sample_difference": same_draws[name],
            }
        )
    result = {
        "base": args.base,
        "head": subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "machine": {
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "settings": {
            "features": features,
            "width": width,
            "num_samples": samples,
            "horizon": horizon,
            "repeats": repeats,
            "quick": args.quick,
        },
        "variants": rows,
    }
    lines = [
        f"# This tree vs {args.base}: forecast step, paired (D={features}, GRU 3 x {width}, "
        f"5 couplings 3 x {width}, S={samples})",
        "",
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}; {repeats} paired "
        "repeats, round-robin; ratio = new / base per repeat (median, IQR).",
        "",
        "| variant | base ms/step | new ms/step | new / base | same draws (max diff) |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['variant']} | {row['base_ms']:.2f} | {row['new_ms']:.2f} | "
            f"{row['ratio_median']:.3f} ({row['ratio_q1']:.3f}-{row['ratio_q3']:.3f}) | "
            f"{row['max_sample_difference']:.1e} |"
        )
    suffix = f"_t{torch.get_num_threads()}" + ("_quick" if args.quick else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"versus{suffix}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"versus{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
