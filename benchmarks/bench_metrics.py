"""Benchmark: energy score (and CRPS) of snfseq.metrics against scoringrules' backends.

Run ``python benchmarks/bench_metrics.py [--quick]``. Writes ``benchmarks/results/metrics.json``
and ``benchmarks/results/metrics.md`` (``metrics_quick.*`` with ``--quick``, small sizes, < 30 s).

Problem: ``S`` samples of a ``B``-series forecast whose event is ``H x D`` numbers (default
S = 500, B = 8, H = 1, D = 408, float32 keypoint-like values in [0, 1]). Every method gets the
same numbers in its natural layout (snfseq ``[S, B, H, D]``, scoringrules ``[B, S, H * D]``),
prepared before timing.

How it measures:
- Time: median wall-clock of several calls after one warm-up call (which also triggers
  numba's compilation or cache load); slow methods get fewer calls (at least one). snfseq
  runs with torch's default thread count and, separately, with one thread (numba's
  scoringrules kernels are single-threaded).
- Memory: each method runs in a fresh subprocess (``--quick``: all in this one) whose glibc
  mmap and trim thresholds are fixed at 64 KiB (``mallopt``, at start), so that large
  buffers are mmapped and leave the resident set when freed (numpy and torch CPU both
  allocate through malloc). After warm-up the kernel's resident-set high-water mark is
  reset (``/proc/self/clear_refs``) and one call runs; peak memory is ``VmHWM`` minus the
  resident size before the call: the extra memory the call touched, inputs excluded. For
  numpy-based backends ``tracemalloc``'s peak, and for torch-based ones the peak of live
  tensor storage seen by a ``TorchDispatchMode`` (kernel-internal scratch excluded), are
  recorded as cross-checks.
- Accuracy: the largest relative deviation from scoringrules' numba backend on float64
  copies of the data.
The machine is shared, so the load average at start is recorded with the results.
"""

import argparse
import ctypes
import ctypes.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
import weakref
from functools import partial
from pathlib import Path
from typing import Any

import numba
import numpy as np
import scoringrules as sr
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from snfseq import metrics

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = (
    "snfseq",
    "snfseq-1-thread",
    "scoringrules-numba",
    "scoringrules-numpy",
    "scoringrules-torch",
)
# Budget for timed calls of one method after warm-up, in seconds.
TIME_BUDGET = 20.0
DEFAULT_THREADS = torch.get_num_threads()


def make_data(size: int, batch: int, horizon: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    samples = rng.random((size, batch, horizon, features), dtype=np.float32)
    obs = rng.random((batch, horizon, features), dtype=np.float32)
    return samples, obs


def memory_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def fixed_mmap_threshold() -> None:
    """Makes glibc mmap every buffer over 64 KiB and trim free heap top over 64 KiB, so that
    freed buffers leave the RSS at once and new ones enter it (call before big allocations)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    m_trim_threshold, m_mmap_threshold = -1, -3
    for option in (m_trim_threshold, m_mmap_threshold):
        if not libc.mallopt(option, 65536):
            raise RuntimeError(f"mallopt({option}) failed")


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


class LiveTensorBytes(TorchDispatchMode):
    """Peak bytes of tensor storage created inside the mode and still alive."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[int, int]] = {}  # storage pointer -> (bytes, references)
        self.current = 0
        self.peak = 0

    def _release(self, pointer: int) -> None:
        size, count = self.live[pointer]
        if count > 1:
            self.live[pointer] = (size, count - 1)
        else:
            del self.live[pointer]
            self.current -= size

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        inputs = {
            value.untyped_storage().data_ptr()
            for value in tree_flatten((args, kwargs))[0]
            if isinstance(value, torch.Tensor)
        }
        for value in out if isinstance(out, (tuple, list)) else (out,):
            if not isinstance(value, torch.Tensor):
                continue
            storage = value.untyped_storage()
            pointer = storage.data_ptr()
            if pointer in inputs and pointer not in self.live:
                continue  # a view of memory allocated before the mode, such as the inputs
            size, count = self.live.get(pointer, (storage.nbytes(), 0))
            if count == 0:
                self.current += size
                self.peak = max(self.peak, self.current)
            self.live[pointer] = (size, count + 1)
            weakref.finalize(value, self._release, pointer)
        return out


def build(method: str, samples: np.ndarray, obs: np.ndarray) -> Any:
    """A zero-argument callable computing the energy scores with ``method``."""
    size, batch = samples.shape[:2]
    ensemble = np.ascontiguousarray(np.moveaxis(samples.reshape(size, batch, -1), 0, 1))
    observed = np.ascontiguousarray(obs.reshape(batch, -1))
    torch.set_num_threads(1 if method == "snfseq-1-thread" else DEFAULT_THREADS)
    if method.startswith("snfseq"):
        tensor, target = torch.from_numpy(samples), torch.from_numpy(obs)
        return lambda: metrics.energy_score(tensor, target).numpy()
    backend = method.removeprefix("scoringrules-")
    if backend == "torch":
        tensor, target = torch.from_numpy(ensemble), torch.from_numpy(observed)
        return lambda: sr.es_ensemble(target, tensor, backend="torch").numpy()
    return lambda: np.asarray(sr.es_ensemble(observed, ensemble, backend=backend))


def measure(method: str, shape: list[int], repeats: int, per_series: bool) -> dict[str, Any]:
    """Time and peak memory of one method in this process (see the module doc)."""
    samples, obs = make_data(*shape)
    if per_series:
        # Runs one series at a time to bound the dense [S, S, F] difference array.
        calls = [build(method, samples[:, i : i + 1], obs[i : i + 1]) for i in range(shape[1])]

        def call() -> np.ndarray:
            return np.concatenate([c() for c in calls])
    else:
        call = build(method, samples, obs)
    start = time.perf_counter()
    result = call()
    first = time.perf_counter() - start
    times: list[float] = []
    while len(times) < repeats and (not times or sum(times) < TIME_BUDGET):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    tracked = reset_peak_rss()
    before = memory_kib("VmRSS")
    call()
    peak_kib = memory_kib("VmHWM") - before if tracked else None
    if method.startswith(("snfseq", "scoringrules-torch")):
        with LiveTensorBytes() as live:
            call()
        traced = live.peak
    else:
        tracemalloc.start()
        call()
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    threads = None
    if method.startswith("snfseq") or method.endswith("torch"):
        threads = torch.get_num_threads()
    return {
        "method": method,
        "per_series": per_series,
        "first_call_s": first,
        "times_s": times,
        "median_s": statistics.median(times),
        "peak_rss_delta_mib": None if peak_kib is None else peak_kib / 1024,
        "cross_check_peak_mib": traced / 2**20,
        "torch_threads": threads,
        "result": np.asarray(result, dtype=np.float64).tolist(),
    }


def run_workers(
    methods: list[str], shape: list[int], repeats: int, per_series: list[str]
) -> list[dict[str, Any]]:
    """Measures ``methods`` one after another in a fresh subprocess."""
    command = [sys.executable, __file__, "--shape", *map(str, shape), "--repeats", str(repeats)]
    command += ["--worker", *methods] + (["--per-series", *per_series] if per_series else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return [
            {"method": method, "error": done.stderr.strip().splitlines()[-1:]} for method in methods
        ]
    return [json.loads(line) for line in done.stdout.strip().splitlines()]


def available_mib() -> float:
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reference(samples: np.ndarray, obs: np.ndarray) -> np.ndarray:
    size, batch = samples.shape[:2]
    ensemble = np.moveaxis(samples.reshape(size, batch, -1).astype(np.float64), 0, 1)
    return np.asarray(
        sr.es_ensemble(obs.reshape(batch, -1).astype(np.float64), ensemble, backend="numba")
    )


def ours(x: Any, y: Any) -> np.ndarray:
    return metrics.energy_score(x, y).numpy()


def plain_cdist(flat: Any, y: Any, mode: str) -> np.ndarray:
    """Energy score with one dense ``torch.cdist`` over all pairs, as a user might write it."""
    fit = (flat - y.reshape(flat.shape[0], 1, -1)).norm(dim=-1).mean(1)
    return (fit - 0.5 * torch.cdist(flat, flat, compute_mode=mode).mean((1, 2))).numpy()


def kernel_study(shape: list[int], repeats: int) -> list[dict[str, Any]]:
    """Distance kernels for the pair term, on benign data and on data far from the origin."""
    size, batch, horizon, features = shape
    samples, obs = make_data(*shape)
    rows = []
    for label, offset, scale in (
        ("uniform [0, 1]", 0.0, 1.0),
        ("100 + 0.01 * U[0, 1]", 100.0, 0.01),
    ):
        x = torch.from_numpy(samples) * scale + offset
        y = torch.from_numpy(obs) * scale + offset
        exact = metrics.energy_score(x.double(), y.double()).numpy()
        flat = x.reshape(size, batch, -1).transpose(0, 1).contiguous()
        kernels = {
            "snfseq (centred mm, refined, block-triangular)": partial(ours, x, y),
            "torch.cdist, mm": partial(plain_cdist, flat, y, "use_mm_for_euclid_dist"),
            "torch.cdist, donot_use_mm (exact)": partial(
                plain_cdist, flat, y, "donot_use_mm_for_euclid_dist"
            ),
        }
        for name, call in kernels.items():
            result = call()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
            error = float(np.max(np.abs(result - exact) / np.abs(exact)))
            rows.append(
                {
                    "data": label,
                    "kernel": name,
                    "median_s": statistics.median(times),
                    "max_rel_error": error,
                }
            )
    return rows


def crps_study(shape: list[int], repeats: int) -> list[dict[str, Any]]:
    """Per-entry CRPS: sorted-sample formula against scoringrules' numba estimators."""
    samples, obs = make_data(*shape)
    x, y = torch.from_numpy(samples), torch.from_numpy(obs)
    moved = np.ascontiguousarray(np.moveaxis(samples, 0, -1))
    calls = {
        "snfseq crps (sorted, O(S log S))": lambda: metrics.crps(x, y).numpy(),
        "scoringrules numba, nrg (pairs, O(S^2))": lambda: sr.crps_ensemble(
            obs, moved, estimator="nrg", backend="numba"
        ),
        "scoringrules numba, pwm (sorted)": lambda: sr.crps_ensemble(
            obs, moved, estimator="pwm", backend="numba"
        ),
    }
    rows = []
    for name, call in calls.items():
        call()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        rows.append({"method": name, "median_s": statistics.median(times)})
    return rows


def thread_probe() -> dict[str, float]:
    """Median time (ms) of adding 1 to 2**20 floats, with the default threads and with one."""
    values = torch.rand(1 << 20)
    out = {}
    for threads in sorted({DEFAULT_THREADS, 1}):
        torch.set_num_threads(threads)
        times = []
        for _ in range(21):
            start = time.perf_counter()
            values.add(1.0)
            times.append(time.perf_counter() - start)
        out[str(threads)] = 1e3 * statistics.median(times)
    torch.set_num_threads(DEFAULT_THREADS)
    return out


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "mem_available_mib_at_start": available_mib(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "scoringrules": sr.__version__,
        "add_1m_ms_by_threads": thread_probe(),
    }


def markdown(report: dict[str, Any]) -> str:
    config, host = report["config"], report["machine"]
    lines = [
        "# Energy score benchmark",
        "",
        f"S = {config['S']}, B = {config['B']}, event = {config['H']} x {config['D']} "
        f"(F = {config['H'] * config['D']}), float32; samples are "
        f"{config['input_mib']:.1f} MiB. Machine: {host['processor']}, {host['cpu_count']} "
        f"cores, torch threads {host['torch_threads']}, load average at start "
        f"{host['load_average_at_start'][0]:.1f}.",
        "",
        "| method | median time (ms) | peak extra RSS (MiB) | cross-check peak (MiB) "
        "| max rel. error |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in report["energy_score"]:
        if "error" in row:
            lines.append(f"| {row['method']} | failed: {row['error']} | | | |")
            continue

        def fmt(value: float | None, spec: str = ".1f") -> str:
            return "n/a" if value is None else format(value, spec)

        name = row["method"] + (" (one series at a time)" if row["per_series"] else "")
        lines.append(
            f"| {name} | {1e3 * row['median_s']:.1f} | {fmt(row['peak_rss_delta_mib'])} | "
            f"{fmt(row['cross_check_peak_mib'])} | {row['max_rel_error']:.1e} |"
        )
    lines += ["", "## Distance kernels for the pair term (one thread)", ""]
    lines += [
        "| data | kernel | median time (ms) | max rel. error vs float64 |",
        "|---|---|---:|---:|",
    ]
    for row in report["kernels"]:
        time_ms, error = 1e3 * row["median_s"], row["max_rel_error"]
        lines.append(f"| {row['data']} | {row['kernel']} | {time_ms:.1f} | {error:.1e} |")
    lines += [
        "",
        "## CRPS per entry (same data, one thread)",
        "",
        "| method | median time (ms) |",
        "|---|---:|",
    ]
    for row in report["crps"]:
        lines.append(f"| {row['method']} | {1e3 * row['median_s']:.1f} |")
    lines += ["", "## Verdict", ""] + [f"- {line}" for line in report["verdict"]]
    return "\n".join(lines) + "\n"


def verdict(rows: list[dict[str, Any]], probe: dict[str, float]) -> list[str]:
    ok = {row["method"]: row for row in rows if "error" not in row}
    others = [row for name, row in ok.items() if name.startswith("scoringrules")]
    if "snfseq" not in ok or not others:
        return ["snfseq or every scoringrules backend failed; see the table"]
    fastest = min(others, key=lambda row: row["median_s"])
    lines = [
        f"fastest scoringrules backend: {fastest['method']} at {1e3 * fastest['median_s']:.1f} ms"
    ]
    for name in ("snfseq", "snfseq-1-thread"):
        if name not in ok:
            continue
        ours = ok[name]
        speedup = fastest["median_s"] / ours["median_s"]
        lines.append(
            f"time, {name} ({ours['torch_threads']} thread(s)): {1e3 * ours['median_s']:.1f} ms, "
            f"{speedup:.1f}x the speed of {fastest['method']} (goal > 1x: "
            f"{'met' if speedup > 1 else 'NOT met'})"
        )
    if "snfseq-1-thread" in ok and ok["snfseq"]["median_s"] > 3 * ok["snfseq-1-thread"]["median_s"]:
        lines.append(
            "snfseq with the default threads was "
            f"{ok['snfseq']['median_s'] / ok['snfseq-1-thread']['median_s']:.0f}x slower than "
            "with one: the cores were shared with other jobs, so each parallel torch op waited "
            "for a descheduled OpenMP thread (a lone 1M-element add: "
            f"{probe[str(DEFAULT_THREADS)]:.2f} ms with {DEFAULT_THREADS} threads, "
            f"{probe['1']:.2f} ms with 1); use torch.set_num_threads(1) on a busy machine"
        )
    ours = ok["snfseq"]
    if "scoringrules-numba" in ok:
        lines.append(
            "scoringrules' numba kernel loops over pairs with O(F) scratch, so it needs almost "
            "no extra memory but does O(S^2 F) scalar work; snfseq holds one centred copy of "
            "(a slice of) the samples plus distance blocks to use a matrix product"
        )
    for row in others:
        if row["peak_rss_delta_mib"] is None or ours["peak_rss_delta_mib"] is None:
            continue
        ratio = row["peak_rss_delta_mib"] / max(ours["peak_rss_delta_mib"], 1e-3)
        lines.append(
            f"memory vs {row['method']}: {row['peak_rss_delta_mib']:.2f} MiB against snfseq's "
            f"{ours['peak_rss_delta_mib']:.2f} MiB, ratio {ratio:.2f} (goal >= 10: "
            f"{'met' if ratio >= 10 else 'NOT met'})"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, finishes in < 30 s")
    parser.add_argument("--worker", choices=METHODS, nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--shape", type=int, nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=5, help=argparse.SUPPRESS)
    parser.add_argument("--per-series", choices=METHODS, nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    fixed_mmap_threshold()
    if args.worker:
        for method in args.worker:
            per_series = method in (args.per_series or [])
            print(json.dumps(measure(method, args.shape, args.repeats, per_series)), flush=True)
        return

    shape = [200, 2, 1, 408] if args.quick else [500, 8, 1, 408]
    repeats = 3 if args.quick else 7
    size, batch, horizon, features = shape
    report: dict[str, Any] = {
        "machine": machine(),
        "config": {
            "S": size,
            "B": batch,
            "H": horizon,
            "D": features,
            "dtype": "float32",
            "quick": args.quick,
            "input_mib": size * batch * horizon * features * 4 / 2**20,
        },
    }
    samples, obs = make_data(*shape)
    exact = reference(samples, obs)
    # scoringrules' numpy and torch backends hold [B, S, S, F] differences (twice, for numpy);
    # on a shared machine they go one series at a time unless that fits thrice in free memory.
    dense_mib = batch * size * size * horizon * features * 4 / 2**20
    copies = {"scoringrules-numpy": 2, "scoringrules-torch": 1}
    per_series = [name for name, k in copies.items() if k * dense_mib > available_mib() / 3]
    if args.quick:
        # In this process, to stay within 30 s: interpreter start-ups cost ~10 s each here.
        measured = [measure(method, shape, repeats, method in per_series) for method in METHODS]
    else:
        measured = [
            row for method in METHODS for row in run_workers([method], shape, repeats, per_series)
        ]
    rows = []
    for row in measured:
        if "result" in row:
            result = np.asarray(row.pop("result"))
            row["max_rel_error"] = float(np.max(np.abs(result - exact) / np.abs(exact)))
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "times_s"}), flush=True)
    report["energy_score"] = rows
    # The studies compare kernels, not thread pools: one thread, like numba's gufuncs.
    torch.set_num_threads(1)
    report["kernels"] = kernel_study(shape, repeats)
    report["crps"] = crps_study(shape, repeats)
    report["verdict"] = verdict(rows, report["machine"]["add_1m_ms_by_threads"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "metrics_quick" if args.quick else "metrics"
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
