"""benchmarks/run.py: runs the scripts one by one, skips what the machine lacks, and sums up.

Scripts of a folder made here show the bookkeeping in a second; one real quick script shows
that the runner starts the benchmarks as they expect to be started.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from benchmark_scripts import load_benchmark

run = load_benchmark("run")

WRITES = """
import sys
from pathlib import Path
results = Path(__file__).parent / "results"
results.mkdir(exist_ok=True)
name = "{name}" + ("_quick" if "--quick" in sys.argv else "")
(results / f"{{name}}.md").write_text(" ".join(sys.argv[1:]))
options = "--quick", "--threads"  # what the runner reads in a script to know its options
"""


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    """``bench_good`` (writes a table), ``bench_broken`` (exits 3), ``bench_gluon`` (needs a
    module nobody has) and ``bench_old`` (takes no options, writes nothing)."""
    (tmp_path / "bench_good.py").write_text(WRITES.format(name="good"))
    (tmp_path / "bench_broken.py").write_text("import sys\nprint('it broke')\nsys.exit(3)\n")
    (tmp_path / "bench_gluon.py").write_text("raise SystemExit('must not run')\n")
    (tmp_path / "bench_old.py").write_text("")
    (tmp_path / "helper.py").write_text("raise SystemExit('not a benchmark')\n")
    return tmp_path


@pytest.fixture(autouse=True)
def no_gluonts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(run.NEEDS, "bench_gluon", ("a_module_nobody_has",))
    monkeypatch.setattr(run, "BENCH_PYTHON", tmp_path / "no-venv" / "python")


def test_every_script_runs_and_the_summary_tells_how_it_went(scripts, capsys) -> None:
    assert run.main(["--quick", "--threads", "3"], folder=scripts) == 1
    printed = capsys.readouterr().out
    progress, table = printed.split("\n\nscript")
    assert re.fullmatch(r"\[1/4\] bench_broken \.\.\. failed \(exit 3\), [\d.]+ s, 0 files",
                        progress.splitlines()[0])  # fmt: skip
    assert "    | it broke" in progress  # the end of a failed script's output
    rows = {line.split()[0]: line for line in table.splitlines()[1:-2]}
    assert rows.keys() == {"bench_broken", "bench_gluon", "bench_good", "bench_old"}
    assert "skipped" in rows["bench_gluon"] and "needs a_module_nobody_has" in rows["bench_gluon"]
    assert rows["bench_good"].split()[1] == "ok" and rows["bench_good"].endswith("good_quick.md")
    assert "3 ran, 1 failed, 1 skipped" in table
    # Options go only to the scripts that declare them.
    assert (scripts / "results" / "good_quick.md").read_text() == "--quick --threads 3"


def test_only_and_skip_choose_scripts_by_short_name(scripts, capsys) -> None:
    assert run.main(["--full", "--only", "good", "bench_old.py"], folder=scripts) == 0
    assert run.main(["--full", "--skip", "broken", "gluon", "old"], folder=scripts) == 0
    printed = capsys.readouterr().out
    # The second run rewrites good.md: a changed file counts as written.
    assert len(re.findall(r"bench_good \.\.\. ok, [\d.]+ s, 1 files", printed)) == 2
    assert "bench_old ... ok" in printed
    assert "broken" not in printed and (scripts / "results" / "good.md").read_text() == ""
    with pytest.raises(SystemExit, match="no script bench_nothing"):
        run.main(["--quick", "--only", "nothing"], folder=scripts)


def test_the_plan_of_the_special_scripts() -> None:
    scripts = {script.name: script for script in run.discover(run.FOLDER)}
    cpu = run.Environment()
    cpu.cuda = False  # type: ignore[misc]  # a cached property, set as the machine would
    gpu = run.Environment()
    gpu.cuda = True  # type: ignore[misc]

    def planned(name: str, environment: run.Environment, quick: bool = True) -> list[str]:
        return [
            f"{r.label}: {r.skipped or ' '.join(r.command[2:])}"
            for r in run.plan(scripts[name], quick, 2, None, environment)
        ]

    assert planned("bench_gpu", cpu, quick=False) == [
        "bench_gpu: needs a CUDA device (results/gpu.* come from a GPU)"
    ]
    assert planned("bench_gpu", cpu) == ["bench_gpu (cpu check): --quick --threads 2"]
    assert planned("bench_gpu", gpu) == ["bench_gpu (cuda): --quick --threads 2 --device cuda"]
    assert planned("bench_forecast", gpu, quick=False) == [
        "bench_forecast: --threads 2",
        "bench_forecast (cuda): --threads 2 --device cuda",
    ]
    assert planned("bench_versus", cpu) == [
        "bench_versus: compares with a git revision: give --base REV"
    ]
    # Scripts built on machine.arguments take --quick and --threads without spelling them.
    assert planned("bench_step", cpu) == ["bench_step: --quick --threads 2"]


def test_a_real_script_runs_quick_with_its_results_elsewhere(tmp_path, capsys) -> None:
    status = run.main(
        ["--quick", "--only", "autoregressive", "--threads", "1", "--out", str(tmp_path)]
    )
    table = capsys.readouterr().out.split("\n\nscript")[1]
    assert status == 0, table
    assert "autoregressive_quick.json, autoregressive_quick.md" in table
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "autoregressive_quick.json",
        "autoregressive_quick.md",
    ]


def test_a_script_past_its_time_is_stopped_with_what_it_started(tmp_path, capsys) -> None:
    (tmp_path / "bench_slow.py").write_text(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    assert run.main(["--full", "--timeout", "1", "--logs", str(tmp_path / "logs")], tmp_path) == 1
    assert "bench_slow ... timed out" in capsys.readouterr().out
    child = int((tmp_path / "logs" / "01.log").read_text().split()[0])
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs: a killed process that nobody has reaped yet (a zombie) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")
