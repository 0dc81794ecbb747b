"""One forecast step against its matrix-multiply floor, and where the rest of its time goes.

The paper-size model (D = 60, GRU 3 x 512, 5 affine couplings with conditioners 3 x 512,
S = 100 samples with their own recurrent states, one series; untrained weights). For GRU-NF,
``Refinement.paper()`` and ``Refinement(kernel="mala")``:

* the step: ``(t(H=16) - t(H=1)) / 15``, median of round-robin repeats;
* its floor: every matrix multiply the step does (found with forward hooks on the model's
  linear layers, torch's and zuko's, and ``nn.GRU`` modules during one extra step: rows,
  inputs and outputs of each call; a GRU layer counts its two products), timed as plain
  ``torch.addmm`` calls of
  the same shapes, in float32 and in bfloat16, in the same run. The ratio step / float32
  floor is what issue 11 asks to bring under 1.3; gradient-based refinements also multiply
  backwards through the flow, which the hooks do not see, so their floor is a lower bound;
* GRU-NF and MALA again under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (their floor
  column is still the float32 one; compare with the bfloat16 floor);
* a profile of one GRU-NF forecast of 16 steps: the operators taking the most time.

Run: ``python benchmarks/bench_step.py [--quick] [--threads N]``; writes ``results/step.json``
and ``.md`` (``_quick`` with ``--quick``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import zuko
from machine import arguments, describe, log, step_times, write_report
from torch import nn

from snfseq import Refinement, SequenceFlow

VARIANTS = {"GRU-NF": None, "paper": Refinement.paper(), "mala": Refinement(kernel="mala")}
#: Variants also run under ``torch.autocast("cpu", dtype=torch.bfloat16)``: linear layers and
#: the GRU's products in bfloat16, everything else in float32.
BF16 = ("GRU-NF", "mala")


@dataclass(frozen=True)
class Settings:
    features: int = 60
    hidden: int = 512
    layers: int = 3
    width: int = 512
    samples: int = 100
    repeats: int = 15


QUICK = Settings(features=8, hidden=16, layers=1, width=16, samples=10, repeats=2)


def build(settings: Settings) -> SequenceFlow:
    torch.manual_seed(0)
    model = SequenceFlow(
        features=settings.features,
        hidden=settings.hidden,
        layers=settings.layers,
        transforms=5,
        flow_hidden=(settings.width,) * 3,
        encoder_input="frames",
    )
    model.normalizer.fitted.fill_(True)
    return model.eval()


def gemms(model: SequenceFlow, run: Callable[[int], Any]) -> list[tuple[int, int, int]]:
    """``(rows, inputs, outputs)`` of every matrix multiply one forecast step does: the calls
    of a 2-step forecast minus those of a 1-step one."""

    def record(horizon: int) -> list[tuple[int, int, int]]:
        calls: list[tuple[int, int, int]] = []

        def linear(module: nn.Module, inputs: tuple[Any, ...], _: Any) -> None:
            x, (outputs, width) = inputs[0], module.weight.shape
            calls.append((x.numel() // x.shape[-1], width, outputs))

        def gru(module: nn.Module, inputs: tuple[Any, ...], _: Any) -> None:
            x = inputs[0]
            rows = x.shape[0] * x.shape[1]
            for layer in range(module.num_layers):
                width = module.input_size if layer == 0 else module.hidden_size
                calls.append((rows, width, 3 * module.hidden_size))
                calls.append((rows, module.hidden_size, 3 * module.hidden_size))

        handles = []
        for module in model.modules():
            if isinstance(module, (nn.Linear, zuko.nn.Linear)):
                handles.append(module.register_forward_hook(linear))
            elif isinstance(module, nn.GRU):
                handles.append(module.register_forward_hook(gru))
        try:
            run(horizon)
        finally:
            for handle in handles:
                handle.remove()
        return calls

    one, two = record(1), record(2)
    extra = list(two)
    for call in one:
        extra.remove(call)
    return extra


def floor_ms(shapes: list[tuple[int, int, int]], dtype: torch.dtype, repeats: int) -> float:
    """Median time of all the step's products as plain ``addmm`` calls."""
    operands = [
        tuple(torch.randn(*shape, dtype=dtype) for shape in ((o,), (r, i), (i, o)))
        for r, i, o in shapes
    ]

    def once() -> float:
        tic = time.perf_counter()
        for bias, x, weight in operands:
            torch.addmm(bias, x, weight)
        return 1000 * (time.perf_counter() - tic)

    once()
    return statistics.median(once() for _ in range(max(repeats, 5)))


def operator_times(run: Callable[[int], Any]) -> dict[str, tuple[int, float]]:
    """Calls and self ms of every operator in a 16-step forecast (torch profiler)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        run(16)
    return {
        event.key: (event.count, event.self_cpu_time_total / 1000)
        for event in profile.key_averages()
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = arguments(__doc__).parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = QUICK if args.quick else Settings()
    started = time.perf_counter()
    model = build(settings)
    context = torch.randn(1, 8, settings.features).cumsum(1)

    def runner(refinement: Refinement | None, bf16: bool = False) -> Callable[[int], Any]:
        def run(horizon: int) -> Any:
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return model.forecast(context, horizon, settings.samples, refinement, seed=0)

        return run

    runs = {name: runner(refinement) for name, refinement in VARIANTS.items()}
    runs |= {f"{name} bf16 autocast": runner(VARIANTS[name], bf16=True) for name in BF16}
    log("timing steps")
    steps = step_times(runs, settings.repeats)
    rows: dict[str, Any] = {}
    for name, run in runs.items():
        shapes = gemms(model, run)
        flops = sum(2 * r * i * o for r, i, o in shapes)
        fp32 = floor_ms(shapes, torch.float32, settings.repeats)
        bf16 = floor_ms(shapes, torch.bfloat16, settings.repeats)
        step = steps[name]
        rows[name] = {
            "step_ms": step,
            "gemm_calls": len(shapes),
            "gemm_gflop": flops / 1e9,
            "floor_fp32_ms": fp32,
            "floor_bf16_ms": bf16,
            "step_over_fp32_floor": step / fp32,
            "fp32_gflops_in_floor": flops / fp32 / 1e6,
        }
    log("profiling")
    profiles = {name: operator_times(runs[name]) for name in ("GRU-NF", "paper", "mala")}
    plain = profiles["GRU-NF"]
    total = sum(ms for _, ms in plain.values())
    top = [
        {"operator": op, "calls": calls, "self_ms": ms, "share": ms / total}
        for op, (calls, ms) in sorted(plain.items(), key=lambda kv: -kv[1][1])[:12]
    ]
    extra = {}
    for name in ("paper", "mala"):
        grown = {
            op: (calls - plain.get(op, (0, 0.0))[0], ms - plain.get(op, (0, 0.0))[1])
            for op, (calls, ms) in profiles[name].items()
        }
        extra[name] = [
            {"operator": op, "extra_calls": calls / 16, "extra_ms": ms / 16}
            for op, (calls, ms) in sorted(grown.items(), key=lambda kv: -kv[1][1])[:8]
        ]
    report = {
        "settings": asdict(settings),
        "machine": describe(args.threads),
        "seconds": time.perf_counter() - started,
        "steps": rows,
        "profile_gru_nf_16_steps": top,
        "refinement_extra_per_step": extra,
    }
    write_report(args.out, "step_quick" if args.quick else "step", report, markdown(report))
    return report


def markdown(report: dict[str, Any]) -> str:
    s, m = report["settings"], report["machine"]
    lines = [
        "# One forecast step against its matrix-multiply floor",
        "",
        f"{m['cpu']}, {m['threads']} torch threads, torch {m['torch']}; D = {s['features']}, GRU "
        f"{s['layers']} x {s['hidden']}, 5 couplings 3 x {s['width']}, S = {s['samples']}, one "
        f"series, untrained weights; median of {s['repeats']} repeats; "
        f"{report['seconds'] / 60:.1f} min. Floor: the step's own matrix products as plain "
        "`addmm` calls (for MALA a lower bound: its backward products are not counted).",
        "",
        "| variant | step ms | products | GFLOP | fp32 floor ms | step / fp32 floor | "
        "bf16 floor ms | GFLOP/s in the fp32 floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in report["steps"].items():
        lines.append(
            f"| {name} | {row['step_ms']:.2f} | {row['gemm_calls']} | {row['gemm_gflop']:.2f} | "
            f"{row['floor_fp32_ms']:.2f} | {row['step_over_fp32_floor']:.2f} | "
            f"{row['floor_bf16_ms']:.2f} | {row['fp32_gflops_in_floor']:.0f} |"
        )
    lines += [
        "",
        "Where a GRU-NF forecast of 16 steps spends its time (operators by self time):",
        "",
        "| operator | calls | self ms | share |",
        "|---|---:|---:|---:|",
    ]
    for row in report["profile_gru_nf_16_steps"]:
        lines.append(
            f"| `{row['operator']}` | {row['calls']} | {row['self_ms']:.2f} | "
            f"{100 * row['share']:.1f} % |"
        )
    for name, rows in report["refinement_extra_per_step"].items():
        lines += [
            "",
            f"Where `{name}` spends its time beyond GRU-NF's, per step (operators whose self "
            "time grows most, profiled over 16 steps; the profiler's own overhead inflates "
            "small operators):",
            "",
            "| operator | extra calls | extra ms |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| `{r['operator']}` | {r['extra_calls']:.0f} | {r['extra_ms']:.3f} |" for r in rows
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
