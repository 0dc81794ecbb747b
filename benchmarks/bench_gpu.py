"""The GPU path: a refined forecast step at S = 100 as one CUDA graph, and throughput at
S = 10,000 in float32, TF32 and bfloat16, each beside the step's own matrix-multiply floor
timed on the same device in the same run.

The paper-size model (D = 60, GRU 3 x 512, 5 affine couplings with conditioners 3 x 512;
untrained weights: timings do not depend on them), one series, context 8. For GRU-NF,
``Refinement.paper()``, MALA and HMC (L = 5):

* eager step: ``(t(H=16) - t(H=1)) / 15`` of ``model.forecast`` (device synchronised);
* graphed step: :class:`snfseq.graphs.GraphedRollout`, the step captured once as a CUDA graph,
  timed over ``replays`` replays with CUDA events; the capture (warm-up + capture) apart;
* precisions: float32 (TF32 off), TF32 (matmul and cuDNN) and ``torch.autocast(bfloat16)``;
  sample-steps per second and useful TFLOP/s (the forward products found by the hooks of
  ``bench_step.gemms``; refinements' backward products are not counted);
* the floor: the step's products as plain ``addmm`` calls in one CUDA graph (launches do not
  count), in each precision.

Issue 11's GPU goals: a refined step with S = 100 in <= 1 ms; S = 10,000 at >= 1 M
sample-steps/s in float32/TF32. Where capture fails, the report keeps the error and the
first host synchronisation found by ``torch.cuda.set_sync_debug_mode("error")``.

Run: ``python benchmarks/bench_gpu.py [--quick] [--device cuda]``; writes
``results/gpu.json`` and ``.md`` (``_quick`` with ``--quick``). Without a GPU it runs the
eager parts on the CPU (to check the script).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from bench_step import build as step_model
from bench_step import gemms
from machine import arguments, describe, log, step_times, write_report

from snfseq import Refinement, SequenceFlow
from snfseq.graphs import GraphedRollout

VARIANTS = {
    "GRU-NF": None,
    "paper": Refinement.paper(),
    "mala": Refinement(kernel="mala"),
    "hmc": Refinement(kernel="hmc", num_leapfrog=5),
}
PRECISIONS = ("float32", "tf32", "bfloat16")


@dataclass(frozen=True)
class Settings:
    features: int = 60
    hidden: int = 512
    layers: int = 3
    width: int = 512
    samples: tuple[int, ...] = (100, 10000)
    repeats: int = 5
    replays: int = 200


QUICK = Settings(features=6, hidden=16, layers=1, width=16, samples=(4, 16), repeats=1, replays=3)


def build(settings: Settings, device: torch.device) -> SequenceFlow:
    """bench_step's paper-size model (the same fields), on ``device``."""
    return step_model(settings).to(device)  # type: ignore[arg-type]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def precision(name: str, device: torch.device, graphed: bool = False) -> Iterator[None]:
    """Float32 with TF32 off or on, or bfloat16 autocast (without its weight cache when
    graphed: a cached cast made during capture would be freed under the graph)."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = name == "tf32"
    try:
        if name == "bfloat16":
            with torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=not graphed):
                yield
        else:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def graphed_step(
    model: SequenceFlow, context: torch.Tensor, samples: int, refinement: Any, replays: int
) -> dict[str, Any]:
    """Capture time and ms per replay of one graphed step (or the error and where the step
    synchronises with the host, when capture fails)."""
    device = context.device
    try:
        with torch.no_grad():
            synchronize(device)
            tic = time.perf_counter()
            rollout = model._rollout(context, samples, refinement)
            graphed = GraphedRollout(rollout)
            synchronize(device)
            capture_ms = 1000 * (time.perf_counter() - tic)
            assert graphed.graph is not None
            tic = time.perf_counter()
            graphed.graph.replay()
            synchronize(device)
            # About a second of replays: 200 at S = 100, a few at S = 10,000 with HMC.
            replays = max(5, min(replays, int(1 / max(time.perf_counter() - tic, 1e-6))))
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(replays):
                graphed.graph.replay()
            end.record()
            synchronize(device)
            step_ms = start.elapsed_time(end) / replays
            return {"step_ms": step_ms, "capture_ms": capture_ms, "replays": replays}
    except Exception as error:  # noqa: BLE001 -- the report says why capture failed
        return {
            "error": f"{type(error).__name__}: {error}"[:500],
            "sync": sync_point(model, context, samples, refinement),
        }


def sync_point(model: SequenceFlow, context: torch.Tensor, samples: int, refinement: Any) -> str:
    """The innermost frames where an eager step first synchronises with the host."""
    with torch.no_grad():
        rollout = model._rollout(context, samples, refinement)
        torch.cuda.set_sync_debug_mode("error")
        try:
            rollout.step()
            return "none found"
        except RuntimeError:
            return "".join(traceback.format_exc(limit=-6))[-1500:]
        finally:
            torch.cuda.set_sync_debug_mode(0)


def floor_ms(shapes: list[tuple[int, int, int]], name: str, device: torch.device) -> float:
    """The step's products as plain ``addmm`` calls: one CUDA graph of them on a GPU (median
    of 20 replays), a loop on the CPU."""
    dtype = torch.bfloat16 if name == "bfloat16" else torch.float32
    operands = [
        tuple(torch.randn(*shape, dtype=dtype, device=device) for shape in ((o,), (r, i), (i, o)))
        for r, i, o in shapes
    ]

    def products() -> None:
        for bias, x, weight in operands:
            torch.addmm(bias, x, weight)

    with precision("tf32" if name == "tf32" else "float32", device):
        if device.type != "cuda":
            products()
            tic = time.perf_counter()
            products()
            return 1000 * (time.perf_counter() - tic)
        products()
        synchronize(device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            products()
        times = []
        for _ in range(20):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            graph.replay()
            end.record()
            synchronize(device)
            times.append(start.elapsed_time(end))
        return statistics.median(times)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = arguments(__doc__)
    parser.add_argument("--device", default="cpu", help="cuda or cpu (default cpu)")
    parser.add_argument("--budget", type=float, default=170, help="seconds before skipping")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = QUICK if args.quick else Settings()
    device = torch.device(args.device)
    began = time.perf_counter()
    probe = capture_probe(settings) if device.type == "cuda" else "no CUDA device"
    log(f"capture probe: {probe or 'graphs capture'}")
    model = build(settings, device)
    context = torch.randn(1, 8, settings.features, device=device).cumsum(1)
    rows: list[dict[str, Any]] = []
    floors: list[dict[str, Any]] = []
    flops: dict[int, float] = {}
    small, large = min(settings.samples), max(settings.samples)
    # Most wanted first: a time limit cuts the tail.
    order = [(small, "float32"), (large, "tf32"), (large, "float32"), (large, "bfloat16")]
    order += [(small, "bfloat16"), (small, "tf32")]
    skipped = []
    for samples, name in order:
        if device.type != "cuda" and name == "tf32":
            continue
        if time.perf_counter() - began > args.budget:
            skipped.append(f"S={samples} {name}")
            continue
        try:
            if samples not in flops:
                shapes = gemms(model, forecaster(model, context, samples, None, device))
                flops[samples] = 2.0 * sum(r * i * o for r, i, o in shapes)
                for floor_name in PRECISIONS:
                    if device.type == "cuda" or floor_name != "tf32":
                        floor = floor_ms(shapes, floor_name, device)
                        entry = {"samples": samples, "precision": floor_name, "floor_ms": floor}
                        floors.append(entry)
            with precision(name, device):
                runs = {
                    variant: forecaster(model, context, samples, refinement, device)
                    for variant, refinement in VARIANTS.items()
                }
                eager = step_times(runs, settings.repeats if samples <= 1000 else 2)
            for variant, refinement in VARIANTS.items():
                row: dict[str, Any] = {
                    "samples": samples,
                    "precision": name,
                    "variant": variant,
                    "eager_ms": eager[variant],
                    "gflop_forward": flops[samples] / 1e9,
                }
                if probe is None:
                    with precision(name, device, graphed=True):
                        graph = graphed_step(model, context, samples, refinement, settings.replays)
                        row.update(graph)
                best = min(row["eager_ms"], row.get("step_ms", float("inf")))
                row["sample_steps_per_s"] = samples / best * 1000
                row["tflops"] = flops[samples] / best / 1e9
                rows.append(row)
                graphed = row.get("step_ms", row.get("error", "n/a"))
                log(f"S={samples} {name} {variant}: eager {row['eager_ms']:.3f} ms, {graphed}")
        except Exception as error:  # noqa: BLE001 -- a failure ends the run but not the report
            log(f"S={samples} {name}: {type(error).__name__}: {error}")
            skipped.append(f"S={samples} {name}: {type(error).__name__}: {str(error)[:300]}")
    report = {
        "machine": describe(args.threads),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "settings": asdict(settings),
        "capture_probe": probe or "ok",
        "skipped": skipped,
        "seconds": time.perf_counter() - began,
        "rows": rows,
        "floors": floors,
    }
    write_report(args.out, "gpu_quick" if args.quick else "gpu", report, markdown(report))
    return report


def capture_probe(settings: Settings) -> str | None:
    """Captures a GRU-NF and an HMC step in a fresh process (a failed capture leaves the CUDA
    generator unusable in its process); None when both capture, else what went wrong."""
    code = f"import bench_gpu; bench_gpu.probe({settings.features})"
    try:
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=180,
        )
    except subprocess.TimeoutExpired:
        return "the probe took over 180 s"
    if result.stdout.strip():
        log(f"host syncs in an eager step:\n{result.stdout[-2000:]}")
    return None if result.returncode == 0 else (result.stdout + result.stderr)[-2500:]


def probe(features: int, device_name: str = "cuda") -> None:
    """Run by :func:`capture_probe`: an eager step with host syncs reported (printed, with
    where they happen), then a capture, for GRU-NF and HMC (on a CPU: no sync check, the
    buffered step without capture)."""
    device = torch.device(device_name)
    cuda = device.type == "cuda"
    model = build(Settings(features=features, hidden=32, layers=3, width=32), device)
    context = torch.randn(1, 8, features, device=device).cumsum(1)
    for refinement in (None, VARIANTS["hmc"]):
        with torch.no_grad():
            rollout = model._rollout(context, 8, refinement)
            rollout.step()  # first calls initialise cuBLAS and cuDNN, which may sync
            if cuda:
                torch.cuda.synchronize()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    torch.cuda.set_sync_debug_mode("warn")
                    try:
                        rollout.step()
                    finally:
                        torch.cuda.set_sync_debug_mode(0)
                for warning in caught:
                    print(f"{warning.filename}:{warning.lineno}: {str(warning.message)[:160]}")
            GraphedRollout(model._rollout(context, 8, refinement), capture=cuda).step()
        if cuda:
            torch.cuda.synchronize()


def forecaster(
    model: SequenceFlow, context: torch.Tensor, samples: int, refinement: Any, device: torch.device
) -> Callable[[int], Any]:
    def run(horizon: int) -> Any:
        fc = model.forecast(context, horizon, samples, refinement, seed=0)
        synchronize(device)
        return fc

    return run


def markdown(report: dict[str, Any]) -> str:
    floors = {(f["samples"], f["precision"]): f["floor_ms"] for f in report["floors"]}
    lines = [
        "# The GPU path: graphed steps and throughput",
        "",
        f"Device: {report['device']}, torch {report['torch']}; paper-size model "
        f"(D = {report['settings']['features']}). Eager: `(t(H=16) - t(H=1)) / 15`; graphed: "
        "one CUDA graph per step (`snfseq.graphs.GraphedRollout`), CUDA-event timed; floor: "
        "the step's products as plain `addmm` calls in one graph. Throughput from the faster "
        "of eager and graphed. Generated by `benchmarks/bench_gpu.py`.",
        "",
        "| S | precision | variant | eager ms | graphed ms | capture ms | floor ms "
        "| / GRU-NF | M sample-steps/s | TFLOP/s (fwd) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = {
        (r["samples"], r["precision"]): min(r["eager_ms"], r.get("step_ms", float("inf")))
        for r in report["rows"]
        if r["variant"] == "GRU-NF"
    }
    for r in report["rows"]:
        best = min(r["eager_ms"], r.get("step_ms", float("inf")))
        graphed = f"{r['step_ms']:.3f}" if "step_ms" in r else r.get("error", "n/a")[:60]
        capture = f"{r['capture_ms']:.0f}" if "capture_ms" in r else ""
        floor = floors.get((r["samples"], r["precision"]))
        lines.append(
            f"| {r['samples']:,} | {r['precision']} | {r['variant']} | {r['eager_ms']:.3f} "
            f"| {graphed} | {capture} | {'' if floor is None else f'{floor:.3f}'} "
            f"| {best / base[(r['samples'], r['precision'])]:.2f} "
            f"| {r['sample_steps_per_s'] / 1e6:.3f} | {r['tflops']:.2f} |"
        )
    failures = [r for r in report["rows"] if "sync" in r]
    if failures:
        lines += ["", "## Capture failures", ""]
        for r in failures[:3]:
            lines += [
                f"{r['variant']} S={r['samples']} {r['precision']}: {r['error']}",
                "```",
                r["sync"],
                "```",
            ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
