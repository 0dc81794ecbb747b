"""What every benchmark shares: the machine it ran on, its command line and its result files
(imported by the scripts beside it, which run with this folder on ``sys.path``)."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from snfseq.files import atomic_write, json_ready

RESULTS = Path(__file__).parent / "results"


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(threads: int) -> dict[str, Any]:
    """The machine and software a run measured: CPU, torch threads, torch and Python."""
    return {
        "cpu": cpu_name(),
        "threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def arguments(doc: str | None) -> argparse.ArgumentParser:
    """The options every benchmark takes: ``--quick``, ``--threads`` and ``--out``."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the results")
    return parser


def write_report(folder: Path, name: str, report: dict[str, Any], markdown: str) -> None:
    """Writes ``name.json`` (no NaN) and ``name.md`` into ``folder``, each whole or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(folder / f"{name}.json") as path:
        path.write_text(json.dumps(json_ready(report), indent=1, allow_nan=False))
    with atomic_write(folder / f"{name}.md") as path:
        path.write_text(markdown)


def log(message: str) -> None:
    """A progress line on stderr (the results go to files)."""
    print(message, file=sys.stderr, flush=True)


def step_times(runs: dict[str, Callable[[int], Any]], repeats: int) -> dict[str, float]:
    """Median ms of one forecast step of every variant, ``(t(H=16) - t(H=1)) / 15`` (so that
    encoding the context cancels), timed round-robin after one warm-up call each.

    Args:
        runs: Variant name -> a function forecasting ``horizon`` frames.
        repeats: Paired timings per variant.
    """
    for run in runs.values():
        run(2)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            tic = time.perf_counter()
            run(1)
            one = time.perf_counter() - tic
            tic = time.perf_counter()
            run(16)
            times[name].append(1000 * (time.perf_counter() - tic - one) / 15)
    return {name: statistics.median(values) for name, values in times.items()}
