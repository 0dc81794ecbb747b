"""What every ``snfseq`` command shares: the common options, ``--config``, ``--force``, checks
before any work, one-line errors; and the ``refine`` and ``diagnose`` commands.

Everything runs in process through :func:`snfseq.cli.main`, on a tiny model trained on a
random walk of 5 keypoints.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from snfseq import SequenceFlow, data
from snfseq.cli import COMMANDS, build_parser, main, motion
from snfseq.cli.diagnose import FILES
from snfseq.demo import DemoConfig

torch.set_num_threads(1)
TINY = ["--epochs", "1", "--hidden", "8", "--layers", "1", "--transforms", "2", "--quiet"]
COMMON_FLAGS = ["--config", "--seed", "--device", "--threads", "--quiet", "--verbose"]
COMMON_FLAGS += ["--force", "--version"]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A keypoint file (frames 0-39 of a walk at 10 fps), a model trained on it, its forecast."""
    folder = tmp_path_factory.mktemp("conventions")
    walk = np.random.default_rng(0).normal(0, 0.05, (40, 5, 2)).cumsum(0)
    keypoints = xr.DataArray(walk, dims=("time", "keypoint", "coord"), attrs={"fps": 10.0})
    paths = {"folder": folder, "keypoints": data.save_keypoints(keypoints, folder / "walk.nc")}
    paths["model"] = folder / "model.pt"
    assert main(["train", str(paths["keypoints"]), "-o", str(paths["model"]), *TINY]) == 0
    paths["forecast"] = folder / "forecast.nc"
    command = ["forecast", str(paths["model"]), str(paths["keypoints"]), "-o"]
    assert main([*command, str(paths["forecast"]), "--samples", "4", "--horizon", "3"]) == 0
    return paths


@pytest.fixture(scope="module")
def refined(files: dict[str, Path]) -> Path:
    """``snfseq refine`` of the keypoint file: 6 chains of 4 MALA steps per block, 3 frames."""
    out = files["folder"] / "refined.nc"
    command = ["refine", str(files["model"]), str(files["keypoints"]), "-o", str(out)]
    assert main([*command, "--chains", "6", "--steps", "4", "--horizon", "3"]) == 0
    return out


@pytest.mark.parametrize("command", list(_subparsers()))
def test_every_command_takes_the_common_options_and_explains_each_default(command) -> None:
    subparser = _subparsers()[command]
    options = {option for action in subparser._actions for option in action.option_strings}
    assert set(COMMON_FLAGS) <= options, sorted(set(COMMON_FLAGS) - options)
    assert command in COMMANDS  # and something runs it
    text = " ".join(subparser.format_help().split())
    for action in subparser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        assert action.help, f"snfseq {command} {action.dest} has no help"
        shown = action.option_strings and action.default is not None and action.default is not False
        explained = action.required or not action.option_strings or "default" in action.help
        explained = explained or action.nargs == 0  # a flag: off unless given
        assert shown or explained, f"snfseq {command} {action.dest} does not say its default"
        if shown:
            default = action.default
            if isinstance(default, list):
                default = " ".join(map(str, default))
            assert f"(default: {default})" in text, (command, action.dest)


def test_config_file_gives_options_under_those_of_the_command_line(files, tmp_path) -> None:
    config = tmp_path / "run.toml"
    model = tmp_path / "from-config.pt"
    config.write_text(
        f"seed = 3\nthreads = 1\nsamples = 7\n\n[train]\nepochs = 2\nhidden = 6\nlayers = 1\n"
        f'transforms = 2\nquiet = true\noutput = "{model.as_posix()}"\n'
    )
    argv = ["train", str(files["keypoints"]), "--config", str(config), "--epochs", "1"]
    parser = build_parser()
    from snfseq.cli.config import apply_config

    apply_config(parser, argv)
    args = parser.parse_args(argv)
    # The command line wins over the file, the file over the defaults; `samples` is not an
    # option of train and is left to the commands that have it.
    assert (args.epochs, args.hidden, args.seed, args.threads, args.quiet) == (1, 6, 3, 1, True)
    assert args.output == str(model) and args.transforms == 2 and args.context == 8
    assert main(argv) == 0  # --output from the file satisfies the required option
    assert SequenceFlow.load(model).config.hidden == 6


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        ("[train]\nepoch = 2\n", "run.toml [train]: epoch is not an option of snfseq train; "),
        ("[train]\nepochs = '2'\n", "[train]: epochs must be an integer, got '2'"),
        ("[train]\nquiet = 1\n", "quiet is a flag: true or false, got 1"),
        ("[train]\nkeypoints = ['a.nc']\n", "keypoints is an argument of snfseq train"),
        ("[trian]\nepochs = 2\n", "[trian] is not a command"),
        ("epochz = 2\n", "epochz is not an option of any snfseq command; did you mean 'epochs'?"),
        ("[forecast]\nrefinement = 'fast'\n", None),  # another command's table: not read
        ("epochs = [1, 2]\n", "epochs takes one value, not a list"),
        ("epochs = \n", "is not valid TOML"),
    ],
)
def test_config_file_errors_name_the_file_and_key(contents, message, files, tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text(contents)
    out = tmp_path / "m.pt"
    argv = ["train", str(files["keypoints"]), "-o", str(out), *TINY, "--config", str(config)]
    assert main(argv) == (0 if message is None else 2)
    error = capsys.readouterr().err
    if message is not None:
        assert error.startswith("snfseq train: error: --config ") and message in error, error
        assert error.count("\n") == 1 and not out.exists()


def test_force_is_needed_to_replace_an_output(files, refined, tmp_path, capsys) -> None:
    out = tmp_path / "refined.nc"
    command = ["refine", str(files["model"]), str(files["keypoints"]), "-o", str(out)]
    command += ["--chains", "3", "--steps", "1", "--horizon", "2"]
    out.write_bytes(b"an earlier result")
    assert main(command) == 2
    assert f"--output {out} exists; pass --force to replace it" in capsys.readouterr().err
    assert out.read_bytes() == b"an earlier result"
    assert main([*command, "--force"]) == 0
    assert _read(out).forecast.sizes["sample"] == 3
    folder = tmp_path / "diagnostics"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert main(["diagnose", str(refined), "-o", str(folder)]) == 2
    assert "is not empty; pass --force to replace it" in capsys.readouterr().err
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["forecast", "{model}", "{keypoints}", "-o", "{tmp}/f.nc", "--context", "0"], "--context"),
        (["forecast", "{model}", "{keypoints}", "-o", "{tmp}/f.nc", "--context", "-3"], ">= 1"),
        (["forecast", "{model}", "{keypoints}", "-o", "{tmp}/f.csv"], "must end in .nc"),
        (["forecast", "{model}", "{keypoints}", "-o", "{tmp}/no/f.nc"], "output folder not found"),
        (["refine", "{model}", "{keypoints}", "-o", "{tmp}/r.nc", "--chains", "0"], "--chains"),
        (["refine", "{model}", "{keypoints}", "-o", "{tmp}/r.nc", "--steps", "0"], "--steps"),
        (["refine", "{model}", "{keypoints}", "-o", "{tmp}/r.txt"], "must end in .nc"),
        (["refine", "{model}", "{keypoints}", "-o", "{tmp}/r.nc", "--resample", "2"], "(0, 1]"),
        (["refine", "{model}", "{keypoints}", "-o", "{tmp}/r.nc", "--step-size", "0"], "> 0"),
        (["refine", "{model}", "{keypoints}", "-o", "{tmp}/r.nc", "--context", "0"], "--context"),
        (["extract", "{keypoints}", "-o", "{tmp}/no/k.nc"], "output folder not found"),
        (["extract", "{keypoints}", "-o", "{tmp}/k.mp4"], "must end in .npz or .npy or .nc"),
        (["extract", "{keypoints}", "-o", "{tmp}/k.nc", "--max-gap", "-1"], "--max-gap"),
        (["train", "{keypoints}", "-o", "{tmp}/m.pt", "--context", "0"], "--context must be >="),
        (["train", "{keypoints}", "-o", "{tmp}/m.pt", "--resume"], "--resume needs --checkpoint"),
        (["train", "{keypoints}", "-o", "{tmp}/m.pt", "--checkpoint", "{tmp}/no/c"], "not found"),
        (["train", "{keypoints}", "-o", "{tmp}/m.pt", "--checkpoint", "{model}"], "--resume"),
        (["train", "{keypoints}", "-o", "{tmp}/m.pt", "--threads", "0"], "--threads must be"),
        (["train", "{keypoints}", "-o", "{tmp}/m.pt", "--device", "gpu"], "not a torch device"),
        (["diagnose", "{keypoints}", "-o", "{tmp}/d", "--features", "0"], "--features must"),
        (["diagnose", "{keypoints}", "-o", "{model}"], "is a file, not a folder"),
        (["demo", "-o", "{tmp}/demo", "--layout", "mesh7"], "unknown layout 'mesh7'"),
        (["demo", "-o", "{tmp}/demo", "--epochs", "0"], "--epochs must be >= 1"),
        (["render", "{model}", "{keypoints}", "-o", "{tmp}/r.mp4", "--lead", "0"], "--lead"),
        (["stream", "{model}", "{keypoints}", "-o", "{tmp}/s", "--delays", "x"], "--delays"),
        (["backtest", "{tmp}/none.csv", "-H", "2", "-o", "{tmp}/b", "--samples", "0"], "--samp"),
    ],
)
def test_bad_options_fail_fast_leaving_no_file(command, message, files, tmp_path, monkeypatch):
    def work(*args: object, **kwargs: object) -> None:
        raise AssertionError("work started before the options were checked")

    for target, name in (
        (SequenceFlow, "fit"),
        (SequenceFlow, "forecast"),
        (SequenceFlow, "load"),
        (motion.motion, "extract"),
        (motion, "run_demo"),
        (data, "load_keypoints"),
    ):
        monkeypatch.setattr(target, name, work)
    paths = {**files, "tmp": tmp_path}
    errors = _run([part.format(**paths) for part in command])
    assert errors[0] == 2 and message in errors[1] and errors[1].count("\n") == 1, errors
    assert list(tmp_path.iterdir()) == []  # no output, not even a temporary file


def _run(argv: list[str]) -> tuple[int, str]:
    """The exit status of ``snfseq ARGV`` and what it wrote to stderr."""
    from io import StringIO

    saved, sys.stderr = sys.stderr, StringIO()
    try:
        status = main(argv)
        return status, sys.stderr.getvalue()
    finally:
        sys.stderr = saved


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_missing_cuda_device_is_refused_before_any_work(files, tmp_path, capsys) -> None:
    command = ["forecast", str(files["model"]), str(files["keypoints"]), "-o"]
    assert main([*command, str(tmp_path / "f.nc"), "--device", "cuda"]) == 2
    assert "--device cuda: CUDA is not available here; use --device cpu" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_errors_are_one_line_with_exit_status_2_and_verbose_shows_the_traceback(
    files, tmp_path, capsys, monkeypatch
) -> None:
    assert main(["train", str(files["keypoints"]), "--epoch", "2"]) == 2  # argparse's own
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("snfseq train: error: ")
    assert "required: --output/-o" in error and "see snfseq train --help" in error
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"not netCDF")
    command = ["forecast", str(files["model"]), str(junk), "-o", str(tmp_path / "f.nc")]
    assert main(command) == 2  # a library error from a bad input file names the file
    error = capsys.readouterr().err
    assert "cannot read" in error and str(junk) in error and error.count("\n") == 1
    assert main(["diagnose", str(files["forecast"]), "-o", str(tmp_path / "d")]) == 2
    assert "holds no refinement trace (no group 'posterior')" in capsys.readouterr().err

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the kernel diverged\nat step 3")

    monkeypatch.setattr(SequenceFlow, "forecast", fail)
    command = ["forecast", str(files["model"]), str(files["keypoints"]), "-o"]
    command.append(str(tmp_path / "f.nc"))
    assert main(command) == 2
    error = capsys.readouterr().err
    assert error == (
        "snfseq forecast: error: RuntimeError: the kernel diverged at step 3 "
        "(unexpected; --verbose shows the traceback)\n"
    )
    assert main([*command, "--verbose"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("Traceback (most recent call last):") and "in fail" in error
    assert error.endswith("snfseq forecast: error: RuntimeError: the kernel diverged at step 3\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.nc"]


def test_native_logs_are_hidden_unless_verbose_and_settings_are_restored(
    files, tmp_path, capfd, monkeypatch
) -> None:
    seen = {}

    def noisy(args: argparse.Namespace) -> int:
        os.write(2, b"W0000 native log line\n")  # as MediaPipe's absl logging writes
        print("progress from Python", file=sys.stderr)
        seen["threads"], seen["random"] = torch.get_num_threads(), torch.rand(1).item()
        return 0

    monkeypatch.setitem(COMMANDS, "extract", noisy)
    threads = torch.get_num_threads()
    command = ["extract", "video.mp4", "-o", str(tmp_path / "k.nc"), "--threads", "1"]
    assert main([*command, "--seed", "4"]) == 0
    error = capfd.readouterr().err
    assert "progress from Python" in error and "native log line" not in error
    assert seen["threads"] == 1 and torch.get_num_threads() == threads
    first = seen["random"]
    assert main([*command, "--seed", "4", "--verbose"]) == 0
    assert "native log line" in capfd.readouterr().err and seen["random"] == first  # seeded


def test_train_checkpoints_resume_and_only_rank_0_writes(files, tmp_path, monkeypatch) -> None:
    model, checkpoint = tmp_path / "m.pt", tmp_path / "run.ckpt"
    command = ["train", str(files["keypoints"]), "-o", str(model), *TINY]
    command += ["--checkpoint", str(checkpoint), "--checkpoint-every", "1"]
    assert main(command) == 0 and checkpoint.is_file()
    first = SequenceFlow.load(model).state_dict()
    assert _run(command)[0] == 2  # the checkpoint would be overwritten without --resume
    calls = []
    fit = SequenceFlow.fit

    def spy(self: SequenceFlow, *args: object, **options: object) -> object:
        calls.append(options)
        return fit(self, *args, **options)

    monkeypatch.setattr(SequenceFlow, "fit", spy)
    assert main([*command, "--resume", "--force"]) == 0  # a finished run: the same weights
    assert calls[0]["checkpoint"] == str(checkpoint) and calls[0]["resume"] is True
    assert calls[0]["checkpoint_every"] == 1 and calls[0]["checkpoint_minutes"] is None
    again = SequenceFlow.load(model).state_dict()
    assert all(torch.equal(first[name], again[name]) for name in first)
    bigger = [*command, "--resume", "--force", "--hidden", "6"]
    status, error = _run(bigger)
    assert status == 2 and f"--checkpoint {checkpoint} holds another model" in error
    model.unlink()
    monkeypatch.setenv("RANK", "1")  # another process of torchrun: it trains, rank 0 writes
    assert main([*command[:-4], "--quiet"]) == 0 and not model.exists()


def _read(path: Path, group: str | None = None) -> xr.Dataset:
    """A group of a netCDF file, loaded, its file closed (see diagnose._read for why)."""
    with xr.open_dataset(path, group=group) as dataset:
        return dataset.load()


def test_refine_writes_samples_weights_and_the_trace_with_named_dims(files, refined) -> None:
    with xr.open_datatree(refined) as opened:
        tree = opened.load()
    root = tree.to_dataset()
    assert root.forecast.dims == ("sample", "time", "keypoint", "coord")
    assert root.forecast.shape == (6, 3, 5, 2)
    assert root.time.values.tolist() == [40, 41, 42]  # after the file's frames 0-39
    np.testing.assert_allclose(root.seconds.values, [4.0, 4.1, 4.2])
    assert root.context_time.values.tolist() == list(range(32, 40))
    assert root.weight.dims == ("sample",) and float(root.weight.sum()) == pytest.approx(1.0)
    np.testing.assert_allclose(
        root.log_weight.values, root.step_log_weight.sum("time").values, rtol=1e-5, atol=1e-5
    )
    # Each group holds its own coordinates: readable alone as well as in the tree.
    posterior, stats = _read(refined, "posterior"), _read(refined, "sample_stats")
    in_tree = tree["posterior"]["y"]
    np.testing.assert_array_equal(in_tree.values, posterior.y.values)
    assert in_tree.time.values.tolist() == posterior.time.values.tolist()
    assert posterior.y.dims == ("chain", "draw", "block", "time", "feature")
    assert dict(posterior.y.sizes) == {"chain": 6, "draw": 4, "block": 2, "time": 3, "feature": 10}
    assert posterior.time.values.tolist() == [40, 41, 42]
    assert posterior.feature.values.tolist()[:3] == ["0:x", "0:y", "1:x"]
    assert posterior.lam.values.tolist() == [0.0, 1.0]
    assert stats.accepted.dims == ("chain", "draw", "block", "time")
    np.testing.assert_allclose(stats.log_weight.values, root.log_weight.values, rtol=1e-5)
    assert root.attrs["kernel"] == "mala" and root.attrs["steps"] == 4
    assert root.attrs["model"] == str(files["model"].resolve())


def test_refine_continues_a_forecast_file_from_its_own_frames(files, tmp_path, capsys) -> None:
    out = tmp_path / "again.nc"
    command = ["refine", str(files["model"]), str(files["forecast"]), "-o", str(out)]
    assert main([*command, "--chains", "3", "--kernel", "rwm", "--resample", "0.5"]) == 0
    forecast, refined = _read(files["forecast"]), _read(out)
    assert refined.time.values.tolist() == forecast.time.values.tolist()  # its horizon, frames
    np.testing.assert_array_equal(refined.context.values, forecast.context.values)
    assert refined.attrs["step_size"] == 0.1 and refined.attrs["resample"] == 0.5
    assert "3 chains x 3 frames; rwm" in capsys.readouterr().out


def test_diagnose_writes_the_summary_table_and_plots_of_a_trace(refined, tmp_path, capsys):
    out = tmp_path / "diagnostics"
    assert main(["diagnose", str(refined), "-o", str(out), "--step", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    table = pd.read_csv(out / "summary.csv", index_col=["block", "time"])
    assert list(table.index) == [(b, t) for b in (0, 1) for t in (40, 41, 42)]
    assert {"lam", "r_hat_max", "ess_bulk_min", "acceptance", "kish_ess"} <= set(table.columns)
    assert table["r_hat_max"].notna().all()  # 4 draws per chain: defined
    accepted = _read(refined, "sample_stats")["accepted"].astype(float)
    expected = accepted.mean(["chain", "draw"]).transpose("block", "time").values.ravel()
    np.testing.assert_allclose(table["acceptance"].values, expected)
    for name in ("trace.png", "rank.png", "acceptance.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "y: 6 chains x 4 draws" in printed and "wrote summary.csv" in printed
    assert "note: 4 draws per chain, each chain started from its own flow draw" in printed
    assert "note: 4 draws" in (out / "summary.txt").read_text()
    assert main(["diagnose", str(refined), "-o", str(out), "--step", "3", "--force"]) == 2
    assert "--step must be < 3" in capsys.readouterr().err


def test_demo_quick_runs_every_step_at_a_tiny_size(tmp_path, monkeypatch, capsys) -> None:
    configs = []

    def demo(output: object, config: DemoConfig, progress: bool) -> dict:
        configs.append(config)
        raise ValueError("stop here")

    monkeypatch.setattr(motion, "run_demo", demo)
    assert main(["demo", "--quick", "-o", str(tmp_path / "demo"), "--seed", "2"]) == 2
    assert main(["demo", "--quick", "-o", str(tmp_path / "demo"), "--epochs", "3"]) == 2
    assert main(["demo", "-o", str(tmp_path / "demo")]) == 2
    quick, longer, full = configs
    assert quick == dataclasses.replace(DemoConfig.quick(), seed=2)
    assert (quick.epochs, quick.num_samples, quick.render_frames) == (1, 10, 4)
    assert (longer.epochs, longer.num_samples) == (3, 10)  # the command line wins over --quick
    assert (full.epochs, full.num_samples) == (DemoConfig().epochs, DemoConfig().num_samples)
