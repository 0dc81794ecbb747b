"""The motion commands of ``snfseq``: ``demo``, ``extract``, ``train``, ``forecast``,
``render`` and ``stream`` (their options, and what each one does once they are checked).

Example:
    >>> import argparse
    >>> commands = argparse.ArgumentParser().add_subparsers(dest="command")
    >>> add_parsers(commands)
    >>> list(commands.choices) == list(COMMANDS)
    True
"""

from __future__ import annotations

__all__ = ["COMMANDS", "add_parsers", "run"]

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from snfseq import data, motion, transfer
from snfseq.cli.checks import check_motion, write_into
from snfseq.demo import DemoConfig, format_results, run_demo
from snfseq.files import atomic_write, json_ready
from snfseq.model import SequenceFlow
from snfseq.transfer import VARIANTS


def add_parsers(commands: Any) -> None:
    """Adds the motion commands to ``commands``, the subparsers of the ``snfseq`` parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_parsers(parser.add_subparsers(dest="command"))
        >>> parser.parse_args(["render", "m.pt", "v.mp4", "-o", "o.mp4"]).refinement
        ['none', 'paper']
    """
    demo = commands.add_parser("demo", help="train and forecast on built-in real face landmarks")
    demo.add_argument("--output", "-o", default="snfseq-demo", help="output folder")
    demo.add_argument("--epochs", type=int, default=60)
    demo.add_argument("--samples", type=int, default=100, help="samples per forecast")
    demo.add_argument("--layout", default="mesh10", help="mesh10, mesh68 or pca:N")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")

    extract = commands.add_parser("extract", help="landmarks of a video file")
    extract.add_argument("video")
    extract.add_argument("--output", "-o", required=True, help=".nc, .zarr, .npz or .npy")
    extract.add_argument("--landmarks", default="face", choices=["face", "pose", "face+pose"])
    extract.add_argument(
        "--gaps",
        default="trim",
        choices=["trim", "interpolate", "mark", "raise"],
        help="frames without a detection: trim (default) interpolates short gaps and drops "
        "the undetected frames at the start and end; interpolate fills short gaps only",
    )
    extract.add_argument("--max-gap", type=int, default=5, help="longest gap interpolated")
    extract.add_argument("--frames", type=int, help="read at most this many frames")

    train = commands.add_parser("train", help="train a SequenceFlow on keypoint files")
    train.add_argument("keypoints", nargs="+", help="files with dims (time, keypoint, coord)")
    train.add_argument("--output", "-o", required=True, help="checkpoint path (.pt)")
    train.add_argument(
        "--layout",
        default="auto",
        help="for face meshes: auto (= mesh10), mesh10, mesh68, mesh, pca:N or none; "
        "other keypoints train without a layout",
    )
    train.add_argument("--coords", default="x,y", help="coordinates to train on (x,y or x,y,z)")
    train.add_argument("--context", type=int, default=8)
    train.add_argument("--horizon", type=int, default=8)
    train.add_argument("--epochs", type=int, default=100)
    train.add_argument("--hidden", type=int, default=128)
    train.add_argument("--layers", type=int, default=2)
    train.add_argument("--transforms", type=int, default=5)
    train.add_argument("--seed", type=int, default=0)

    forecast = commands.add_parser("forecast", help="forecast the frames after a keypoint file")
    forecast.add_argument("model")
    forecast.add_argument("keypoints")
    forecast.add_argument("--output", "-o", required=True, help=".nc file of samples")
    forecast.add_argument("--context", type=int, default=8)
    forecast.add_argument("--horizon", type=int, default=8)
    forecast.add_argument("--samples", type=int, default=100)
    forecast.add_argument("--refinement", default="none", choices=list(VARIANTS))
    forecast.add_argument("--seed", type=int, default=0)

    render = commands.add_parser("render", help="motion transfer: rendered forecasts of a video")
    render.add_argument("model")
    render.add_argument("video")
    render.add_argument("--output", "-o", required=True, help="side-by-side video (.mp4)")
    render.add_argument("--keypoints", help="the video's landmarks, if already extracted")
    render.add_argument("--lead", type=int, nargs="+", default=[1], help="delay(s) in frames")
    render.add_argument(
        "--refinement",
        "--variant",
        nargs="+",
        default=["none", "paper"],
        choices=list(VARIANTS),
        help="variants to render: none (GRU-NF), paper, mala, hmc, rwm (GRU-SNF)",
    )
    render.add_argument("--samples", type=int, default=3, help="samples shown per variant")
    render.add_argument("--num-samples", type=int, default=20, help="samples rendered, scored")
    render.add_argument("--best", type=int, default=5, help="k of the best-k-of-N scores")
    render.add_argument("--context", type=int, default=8, help="frames before the first forecast")
    render.add_argument("--frames", type=int, help="use only the first frames of the video")
    render.add_argument("--source-frame", type=int, help="frame to animate (default: first face)")
    render.add_argument("--seed", type=int, default=0)
    render.add_argument("--quiet", action="store_true", help="no progress bars")

    stream = commands.add_parser("stream", help="hold/linear/forecast receivers over a lossy link")
    stream.add_argument("model")
    stream.add_argument("video")
    stream.add_argument("--output", "-o", required=True, help="report folder (created)")
    stream.add_argument("--keypoints", help="the video's landmarks, if already extracted")
    stream.add_argument("--delays", default="0,2,4,6,8", help="one-way delays (frames)")
    stream.add_argument("--every", default="1,2,4", help="send intervals (frames), at delay 2")
    stream.add_argument("--losses", default="0,0.1,0.3", help="packet loss rates, at delay 2")
    stream.add_argument("--burst", type=float, help="mean loss burst (default: i.i.d. loss)")
    stream.add_argument("--variant", action="append", choices=list(VARIANTS), help="repeatable")
    stream.add_argument("--samples", type=int, default=100, help="samples per forecast")
    stream.add_argument("--context", type=int, default=8, help="frames the receivers start with")
    stream.add_argument("--frames", type=int, help="use only the first frames of the video")
    stream.add_argument("--start-frame", type=int, help="first streamed frame (default: all)")
    stream.add_argument("--held-out", type=float, help="stream the last fraction of the video")
    stream.add_argument("--seed", type=int, default=0)
    stream.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Checks the options of a motion command, then runs it; returns the exit status.

    Example:
        >>> import argparse
        >>> run(argparse.Namespace(command="forecast", model="missing.pt", keypoints=None,
        ...                        output="f.nc"))
        Traceback (most recent call last):
        ...
        FileNotFoundError: not found: missing.pt
    """
    check_motion(args)
    return COMMANDS[args.command](args)


def _demo(args: argparse.Namespace) -> int:
    config = DemoConfig(epochs=args.epochs, num_samples=args.samples, layout=args.layout)
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
    )
    path = data.save_keypoints(keypoints, args.output)
    detected = int(keypoints.coords["detected"].sum())
    times = keypoints.time.values
    print(
        f"{keypoints.sizes['time']} frames ({detected} with landmarks; "
        f"frames {times[0]}-{times[-1]}) -> {path}"
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    files = [data.load_keypoints(path) for path in args.keypoints]
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
    history = model.fit(windows, context=args.context, epochs=args.epochs, seed=args.seed)
    model.save(args.output)
    best = history.val_nll[history.best_epoch] if history.val_nll else float("nan")
    shape = f"{sequences[0].sizes['keypoint']} keypoints x {sequences[0].sizes['coord']} coords"
    reduced = f"layout {layout.name}, " if layout is not None else "no layout, "
    print(f"trained on {windows.shape[0]} windows ({reduced}{shape})")
    print(f"best validation NLL/dim {best:.3f}")
    print(f"saved {args.output}")
    return 0


def _forecast(args: argparse.Namespace) -> int:
    model = SequenceFlow.load(args.model)
    keypoints = data.load_keypoints(args.keypoints)
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


def _render(args: argparse.Namespace) -> int:
    model = SequenceFlow.load(args.model)
    keypoints = data.load_keypoints(args.keypoints) if args.keypoints else None
    scores = transfer.motion_transfer(
        model,
        args.video,
        keypoints=keypoints,
        variants=args.refinement,
        lead=args.lead,
        context=args.context,
        num_samples=args.num_samples,
        best=args.best,
        tiles=args.samples,
        seed=args.seed,
        source=args.source_frame,
        max_frames=args.frames,
        output=args.output,
        progress=not args.quiet,
    )
    metrics = Path(args.output).with_suffix(".json")
    try:
        report = transfer.scores_to_dict(scores)
        report["attrs"] |= {"model": str(Path(args.model).resolve()), "output": str(args.output)}
        with atomic_write(metrics) as partial:
            partial.write_text(json.dumps(json_ready(report), indent=2, allow_nan=False))
    except BaseException:
        Path(args.output).unlink(missing_ok=True)  # the video alone would be a partial result
        raise
    print(transfer.format_scores(scores))
    print(f"wrote {args.output} and {metrics}")
    return 0


def _stream(args: argparse.Namespace) -> int:
    model = SequenceFlow.load(args.model)
    transfer.to_mesh(model, [0.0] * model.features)  # a model that cannot be rendered fails now
    if args.keypoints:
        keypoints = data.load_keypoints(args.keypoints)
        if args.frames is not None:
            keypoints = keypoints.isel(time=keypoints.time.values < args.frames)
    else:
        progress = not args.quiet
        keypoints = motion.extract(
            args.video, max_frames=args.frames, gaps="trim", progress=progress
        )
    times = keypoints.time.values
    first, last = int(times[0]), int(times[-1])
    video, fps = motion.read_video(args.video, start=first, max_frames=last - first + 1)
    if len(video) <= last - first:
        raise ValueError(f"{args.video} ends before frame {last} (its keypoints go that far)")
    start = None if args.held_out is None else round((1 - args.held_out) * len(times))
    if args.start_frame is not None:
        if args.start_frame not in times:
            raise ValueError(f"--start-frame {args.start_frame} is not among frames {first}-{last}")
        start = int(list(times).index(args.start_frame))
    report = transfer.stream_report(
        model,
        video[times - first],
        keypoints,
        start=start,
        delays=args.delays,
        every=args.every,
        losses=args.losses,
        burst=args.burst,
        variants=args.variant,
        num_samples=args.samples,
        context=args.context,
        seed=args.seed,
        fps=fps if math.isfinite(fps) else None,
        attrs={"model": str(Path(args.model).resolve()), "video": str(Path(args.video).resolve())},
        progress=not args.quiet,
    )
    title = (
        f"{Path(args.video).name}, frames {report.attrs['first_streamed_frame']}-{last} streamed"
    )

    def write(staging: Path) -> list[str]:
        with atomic_write(staging / "report.nc") as partial:
            report.to_netcdf(partial)
        plots = transfer.plot_stream_report(report, staging, title=title)
        return ["report.nc", *(plot.name for plot in plots)]

    names = write_into(args.output, write)
    print(transfer.format_stream_report(report))
    print(f"wrote {', '.join(names)} into {args.output}")
    return 0


#: The motion commands and what runs each, once its options are checked.
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": _demo,
    "extract": _extract,
    "train": _train,
    "forecast": _forecast,
    "render": _render,
    "stream": _stream,
}
