"""Regenerates the benchmark tables: every ``benchmarks/bench_*.py``, one after the other.

Run: ``python benchmarks/run.py --quick|--full [--threads N] [--only NAME...] [--skip NAME...]``.
Each script runs in its own process (from this folder, with the repository on ``PYTHONPATH``),
never two at once, since they time things; ``--quick`` passes each its ``--quick`` (small sizes,
``*_quick.*`` results, to check the scripts), ``--full`` regenerates the tables in ``results/``.
``--threads`` goes to the scripts that take it. A line per script tells its progress; the
summary at the end gives each script's status, seconds and the files it wrote (the files under
``results/`` that are new or changed), and the exit status is 1 when a script failed.

Some scripts need more than this environment:

* ``bench_forecasting`` compares with GluonTS, which needs pandas < 3: it runs with
  ``.venv-bench/bin/python`` (``scripts/setup-bench.sh`` makes it) when this interpreter lacks
  GluonTS, and is skipped, with the reason, when neither has it.
* ``bench_gpu`` runs with ``--device cuda`` on a machine with CUDA; elsewhere ``--quick`` runs
  it on the CPU (its own check of the script) and ``--full`` skips it, so that a CPU run never
  replaces the GPU table. On CUDA, ``bench_forecast`` also runs with ``--device cuda``
  (``results/forecast_cuda.*``).
* ``bench_versus`` compares with a git revision: it runs only when ``--base REV`` is given.

Example:
    >>> scripts = discover(FOLDER)
    >>> [script.name for script in scripts][:2]
    ['bench_autoregressive', 'bench_codecs']
    >>> planned = plan(scripts[0], quick=True, threads=1, base=None, environment=Environment())
    >>> [Path(part).name for part in planned[0].command[1:]]
    ['bench_autoregressive.py', '--quick', '--threads', '1']
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
ROOT = FOLDER.parent
#: The environment of the scripts that need GluonTS (``scripts/setup-bench.sh``).
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
#: Modules a script cannot run without, beyond this package's own dependencies.
NEEDS: dict[str, tuple[str, ...]] = {"bench_forecasting": ("gluonts",), "bench_kernels": ("pyro",)}
#: Scripts that also run on a CUDA device, with ``--device cuda``, where there is one.
ALSO_ON_CUDA = ("bench_forecast",)
#: The options of the scripts that this runner sets.
OPTIONS = ("--quick", "--threads", "--out", "--device", "--base")


@dataclass(frozen=True)
class Script:
    """A benchmark script and the options it takes (read from its source, not run)."""

    name: str
    path: Path
    options: frozenset[str]


@dataclass(frozen=True)
class Run:
    """One planned run: a label for the progress line, and the command, or why not."""

    label: str
    command: list[str] = field(default_factory=list)
    skipped: str | None = None


@dataclass
class Outcome:
    """What a run did: ``status`` is ``ok``, ``failed (exit N)``, ``timed out``, ``skipped``."""

    label: str
    status: str
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.status not in ("ok", "skipped")


def discover(folder: Path) -> list[Script]:
    """The ``bench_*.py`` scripts of ``folder``, by name, with the options each declares
    itself or takes from ``machine.arguments`` (``--quick``, ``--threads``, ``--out``): read
    from the source, since running each with ``--help`` would import torch seventeen times."""
    scripts = []
    for path in sorted(folder.glob("bench_*.py")):
        source = path.read_text()
        declared = {o for o in OPTIONS if f'"{o}"' in source}
        if re.search(r"^from machine import .*\barguments\b", source, re.MULTILINE):
            declared |= {"--quick", "--threads", "--out"}
        scripts.append(Script(path.stem, path, frozenset(declared)))
    return scripts


class Environment:
    """What this machine offers the scripts: interpreters with the modules they need, CUDA."""

    @functools.cached_property
    def cuda(self) -> bool:
        try:
            import torch
        except ImportError:
            return False
        return bool(torch.cuda.is_available())

    def interpreter(self, modules: Sequence[str]) -> str | None:
        """This interpreter if it imports ``modules``, else ``.venv-bench``'s if that does."""
        if all(importlib.util.find_spec(module) for module in modules):
            return sys.executable
        if BENCH_PYTHON.exists() and self._imports(str(BENCH_PYTHON), tuple(modules)):
            return str(BENCH_PYTHON)
        return None

    @functools.lru_cache  # noqa: B019 - one Environment per run; the cache dies with it
    def _imports(self, python: str, modules: tuple[str, ...]) -> bool:
        check = f"import importlib.util as u; exit(not all(map(u.find_spec, {list(modules)!r})))"
        return subprocess.run([python, "-c", check], capture_output=True).returncode == 0


def plan(
    script: Script,
    quick: bool,
    threads: int | None,
    base: str | None,
    environment: Environment,
    out: Path | None = None,
) -> list[Run]:
    """The runs of ``script`` (one, or two with a CUDA variant), each a command or a skip;
    ``out`` is the results folder of the scripts that take ``--out``."""
    name = script.name
    python = environment.interpreter(NEEDS.get(name, ()))
    if python is None:
        missing = ", ".join(NEEDS[name])
        return [Run(name, skipped=f"needs {missing}: make .venv-bench (scripts/setup-bench.sh)")]
    if "--base" in script.options and base is None:
        return [Run(name, skipped="compares with a git revision: give --base REV")]
    command = [python, str(script.path)]
    command += ["--quick"] if quick and "--quick" in script.options else []
    command += ["--threads", str(threads)] if threads and "--threads" in script.options else []
    command += ["--base", base] if base and "--base" in script.options else []
    command += ["--out", str(out)] if out and "--out" in script.options else []
    if name == "bench_gpu":
        if environment.cuda:
            return [Run(f"{name} (cuda)", [*command, "--device", "cuda"])]
        if not quick:
            return [Run(name, skipped="needs a CUDA device (results/gpu.* come from a GPU)")]
        return [Run(f"{name} (cpu check)", command)]
    runs = [Run(name, command)]
    if name in ALSO_ON_CUDA and environment.cuda:
        runs.append(Run(f"{name} (cuda)", [*command, "--device", "cuda"]))
    return runs


def snapshot(folder: Path) -> dict[Path, tuple[int, int]]:
    """Every file under ``folder`` with its modification time and size."""
    if not folder.is_dir():
        return {}
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*") if p.is_file()}


def execute(run: Run, results: Sequence[Path], timeout: float | None, log: Path) -> Outcome:
    """Runs one command with its output in ``log``; the outcome names the files it wrote in
    the ``results`` folders."""
    if run.skipped is not None:
        return Outcome(run.label, "skipped", note=run.skipped)
    before = [snapshot(folder) for folder in results]
    environment = dict(os.environ, PYTHONUNBUFFERED="1")
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [environment.get("PYTHONPATH")])]
    )
    start = time.perf_counter()
    with open(log, "w") as output:
        # A session of its own: a timeout or Ctrl-C stops the script and the processes it
        # started (bench_metrics and bench_forecasting_scale measure in child processes).
        script = subprocess.Popen(
            run.command,
            cwd=Path(run.command[1]).parent,  # where the scripts import machine.py from
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = script.wait(timeout=timeout)
            status = "ok" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            status = "timed out"
        except KeyboardInterrupt:
            status = "interrupted"
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait()
        if status == "interrupted":
            raise KeyboardInterrupt
    seconds = time.perf_counter() - start
    written = sorted(
        str(path.relative_to(folder))
        for folder, old in zip(results, before, strict=True)
        for path, stamp in snapshot(folder).items()
        if old.get(path) != stamp
    )
    note = "" if status == "ok" else tail(log)
    return Outcome(run.label, status, seconds, written, note)


def tail(log: Path, lines: int = 15) -> str:
    """The last lines of a run's output: where a failure says what went wrong."""
    text = log.read_text(errors="replace").splitlines()
    return "\n".join(f"    | {line}" for line in text[-lines:])


def summary(outcomes: Sequence[Outcome]) -> str:
    """The table printed at the end: script, status, seconds, files written."""
    rows = [("script", "status", "seconds", "files written")]
    for o in outcomes:
        written = ", ".join(o.files) or ("-" if o.status != "skipped" else o.note)
        rows.append((o.label, o.status, f"{o.seconds:.1f}" if o.seconds else "-", written))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(
            [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2]), row[3]]
        )
        for row in rows
    ]
    failed = sum(o.failed for o in outcomes)
    ran = sum(o.status != "skipped" for o in outcomes)
    lines.append(f"{ran} ran, {failed} failed, {len(outcomes) - ran} skipped")
    return "\n".join(lines)


def select(scripts: list[Script], only: Sequence[str], skip: Sequence[str]) -> list[Script]:
    """``scripts`` narrowed by name (``step``, ``bench_step`` or ``bench_step.py`` alike)."""
    known = {s.name for s in scripts}

    def names(given: Sequence[str]) -> set[str]:
        wanted = {n.removesuffix(".py") for n in given}
        wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in wanted}
        unknown = sorted(wanted - known)
        if unknown:
            raise SystemExit(f"run.py: no script {unknown[0]}; there are {sorted(known)}")
        return wanted

    chosen = names(only) if only else known
    return [s for s in scripts if s.name in chosen - names(skip)]


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--quick", action="store_true", help="each script's --quick: a check")
    mode.add_argument("--full", action="store_true", help="the sizes of the published tables")
    parser.add_argument("--threads", type=int, help="torch threads, for the scripts that take it")
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME", help="just these")
    parser.add_argument("--skip", nargs="+", default=[], metavar="NAME", help="all but these")
    parser.add_argument("--base", help="git revision for bench_versus (else it is skipped)")
    parser.add_argument("--timeout", type=float, help="seconds before a script is stopped")
    parser.add_argument("--out", type=Path, help="results of the scripts that take --out")
    parser.add_argument("--logs", type=Path, help="keep each script's output here")
    parser.add_argument("--list", action="store_true", help="print the plan, run nothing")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, folder: Path = FOLDER) -> int:
    """Runs the benchmarks of ``folder`` as ``argv`` says; returns the exit status."""
    args = parse(argv)
    environment = Environment()
    out = args.out.resolve() if args.out else None  # the scripts run from their folder
    scripts = select(discover(folder), args.only, args.skip)
    runs = [
        run
        for script in scripts
        for run in plan(script, args.quick, args.threads, args.base, environment, out)
    ]
    if args.list:
        for run in runs:
            print(f"{run.label}: {run.skipped or ' '.join(run.command)}")
        return 0
    results = [folder / "results"] + ([out] if out else [])
    logs = args.logs or Path(tempfile.mkdtemp(prefix="snfseq-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    for index, run in enumerate(runs, start=1):
        print(f"[{index}/{len(runs)}] {run.label} ...", end=" ", flush=True)
        try:
            outcome = execute(run, results, args.timeout, logs / f"{index:02d}.log")
        except KeyboardInterrupt:
            outcomes.append(Outcome(run.label, "interrupted"))
            break
        outcomes.append(outcome)
        done = f"{outcome.status}" + (f" ({outcome.note})" if outcome.status == "skipped" else "")
        if outcome.status != "skipped":
            done += f", {outcome.seconds:.1f} s, {len(outcome.files)} files"
        print(done, flush=True)
        if outcome.failed and outcome.note:
            print(outcome.note, flush=True)
    print("\n" + summary(outcomes))
    if args.logs is None and not any(o.failed for o in outcomes):
        for log in logs.iterdir():
            log.unlink()
        logs.rmdir()
    elif any(o.failed for o in outcomes):
        print(f"logs: {logs}")
    return 1 if any(o.failed for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
