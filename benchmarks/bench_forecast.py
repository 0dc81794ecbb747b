"""Forecast latency of the paper-size model: GRU-NF, GRU-SNF variants, the published loop.

Paper-size model: D = 60 features, GRU 3 x 512, 5 affine coupling layers whose conditioners
are MLPs 3 x 512, S = 100 samples with per-sample recurrent states, one series, 8 context
frames. Weights are untrained: latency does not depend on them.

Measured in one run (median of repeats after warm-up):

* one forecast step (``(t(H=16) - t(H=1)) / 15``, i.e. without encoding the context) and a
  whole 16-step forecast, for GRU-NF and GRU-SNF with ``Refinement.paper()``, MALA and HMC;
* the published sampling procedure: a Python loop drawing one sample at a time through the
  flow, with per-coordinate random-walk accepts after each layer and the recurrent state fed
  the sample mean (paper-notes defect 5), per forecast step.

Run: ``python benchmarks/bench_forecast.py [--quick] [--threads N] [--device cuda]``; writes
``results/forecast_tN.json`` and ``results/forecast_tN.md`` (N = torch threads), or
``results/forecast_cuda.*`` on a GPU (timings synchronise the device).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from snfseq import Refinement, SequenceFlow

RESULTS = Path(__file__).parent / "results"


def paper_model(features: int, hidden: int, width: int) -> SequenceFlow:
    model = SequenceFlow(
        features=features,
        hidden=hidden,
        layers=3,
        transforms=5,
        flow_hidden=(width, width, width),
        encoder_input="frames",
    )
    model.normalizer.fitted.fill_(True)
    return model.eval()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        sync(device)
        tic = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


@torch.no_grad()
def published_step(
    model: SequenceFlow, h: torch.Tensor, state: torch.Tensor, num_samples: int
) -> torch.Tensor:
    """One forecast step of the published code: a loop over samples, per-coordinate accept,
    then one recurrent update on the sample mean (``h: Tensor[1, H]``, ``state: [L, 1, H]``)."""
    flow = model.flow
    c = model.condition(h)
    yhat = model.point_head(h)
    num_layers = flow.num_layers
    draws = []
    for _ in range(num_samples):
        y = torch.randn(1, model.features, device=h.device)
        for k in range(num_layers):
            y, _ = flow.inverse_layer(k, y, c)
            lam = k / (num_layers - 1)
            for _ in range(2):
                proposal = y + 0.35 * torch.randn_like(y)
                current = (1 - lam) * 0.5 * y.square().sum(-1) + lam * (yhat - y).square().sum(-1)
                new = (1 - lam) * 0.5 * proposal.square().sum(-1) + lam * (
                    yhat - proposal
                ).square().sum(-1)
                accept = torch.rand_like(y).log() < (current - new).unsqueeze(-1)
                y = torch.where(accept, proposal, y)
        draws.append(y)
    mean = torch.cat(draws).mean(0, keepdim=True)
    out, _ = model.encoder(mean.unsqueeze(1), state)
    return out[:, 0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.quick:
        features, hidden, width, samples, repeats, horizon = 20, 64, 64, 20, 2, 4
    else:
        features, hidden, width, samples, repeats, horizon = 60, 512, 512, 100, 15, 16
    model = paper_model(features, hidden, width).to(device)
    context = torch.randn(1, 8, features).cumsum(1).to(device)

    variants = {
        "GRU-NF": None,
        "GRU-SNF paper (RWM)": Refinement.paper(),
        "GRU-SNF MALA": Refinement(kernel="mala"),
        "GRU-SNF HMC (L=5)": Refinement(kernel="hmc"),
    }
    # Variants are timed round-robin, so that load drifting during the run hits all alike.
    runs = {name: {1: [], horizon: []} for name in variants}
    for refinement in variants.values():  # warm-up
        model.forecast(context, horizon, samples, refinement=refinement)
    for _ in range(repeats):
        for name, refinement in variants.items():
            for steps in (1, horizon):
                sync(device)
                tic = time.perf_counter()
                model.forecast(context, steps, samples, refinement=refinement)
                sync(device)
                runs[name][steps].append(time.perf_counter() - tic)
    rows = []
    for name in variants:
        one = statistics.median(runs[name][1])
        full = statistics.median(runs[name][horizon])
        rows.append(
            {
                "variant": name,
                "step_ms": 1000 * (full - one) / (horizon - 1),
                "forecast_ms": 1000 * full,
            }
        )
    base = rows[0]["step_ms"]
    for row in rows:
        row["ratio_vs_nf"] = row["step_ms"] / base

    # The online form: push one observed frame, get the next frame's S samples.
    online = model.online(context, samples, horizon=1)
    frame = context[:, -1]
    online_push = timed(lambda: online.push(frame), repeats, device)
    h, state = torch.zeros(1, hidden, device=device), torch.zeros(3, 1, hidden, device=device)
    published = timed(
        lambda: published_step(model, h, state, samples), max(1, repeats // 2), device
    )
    paper_row = rows[1]
    result = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        },
        "settings": {
            "features": features,
            "gru": f"3 x {hidden}",
            "coupling": f"5 x MLP 3 x {width}",
            "num_samples": samples,
            "horizon": horizon,
            "repeats": repeats,
            "quick": args.quick,
        },
        "variants": rows,
        "online_push_ms": 1000 * online_push,
        "published_loop_step_ms": 1000 * published,
        "speedup_paper_vs_published_loop": 1000 * published / paper_row["step_ms"],
        "goals": {"nf_step_ms_max": 20.0, "paper_ratio_max": 1.10, "speedup_min": 40.0},
    }
    RESULTS.mkdir(exist_ok=True)
    suffix = "_cuda" if device.type == "cuda" else f"_t{torch.get_num_threads()}"
    suffix += "_quick" if args.quick else ""
    (RESULTS / f"forecast{suffix}.json").write_text(json.dumps(result, indent=2))
    lines = [
        f"# Forecast latency ({features}-d, GRU {result['settings']['gru']}, "
        f"{result['settings']['coupling']}, S = {samples})",
        "",
        f"Machine: {result['machine']['cpu_count']} CPUs, {result['machine']['torch_threads']} "
        f"torch threads, device {result['machine']['device']}, torch "
        f"{result['machine']['torch']}. Median of {repeats} runs.",
        "",
        "| variant | ms / step | ms / 16-step forecast | ratio vs GRU-NF |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['variant']} | {row['step_ms']:.2f} | {row['forecast_ms']:.1f} | "
            f"{row['ratio_vs_nf']:.3f} |"
        )
    lines += [
        "",
        f"Online forecaster (`model.online`), one push (one recurrent step on the observed "
        f"frame + a 1-step GRU-NF forecast): {result['online_push_ms']:.2f} ms.",
        "",
        f"Published sampling loop (one sample at a time, per-coordinate accept): "
        f"{result['published_loop_step_ms']:.1f} ms / step; GRU-SNF paper is "
        f"{result['speedup_paper_vs_published_loop']:.1f}x faster.",
    ]
    (RESULTS / f"forecast{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
