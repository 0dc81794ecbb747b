"""The motion-transfer commands of ``snfseq``: ``render`` (rolling forecasts of a video rendered
beside it) and ``stream`` (a video's keypoints over a delayed, lossy link).

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
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from snfseq import motion, transfer
from snfseq.cli.checks import checked, write_into
from snfseq.cli.common import load_keypoints, load_model
from snfseq.files import atomic_write, json_ready
from snfseq.transfer import VARIANTS


def add_parsers(commands: Any) -> None:
    """Adds ``render`` and ``stream`` to ``commands``, the subparsers of the ``snfseq`` parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_parsers(parser.add_subparsers(dest="command"))
        >>> parser.parse_args(["render", "m.pt", "v.mp4", "-o", "o.mp4"]).refinement
        ['none', 'paper']
    """
    render = commands.add_parser(
        "render",
        help="motion transfer: rendered forecasts of a video",
        description="Rolling lead-h forecasts of a video's landmarks, rendered side by side "
        "with the real video, and their pixel scores (OUT.json beside OUT.mp4).\n\n"
        "example: snfseq render model.pt talk.mp4 -o talk-forecast.mp4 --lead 1 4",
    )
    render.add_argument("model", help="a model from snfseq train (.pt)")
    render.add_argument("video", help="the video to animate and score against")
    render.add_argument(
        "--output", "-o", required=True, help="side-by-side video (.mp4, .mkv or .mov)"
    )
    render.add_argument(
        "--keypoints", help="the video's landmarks, if already extracted (default: extract them)"
    )
    render.add_argument(
        "--lead", type=int, nargs="+", default=[1], help="delays to hide, in frames"
    )
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
    render.add_argument(
        "--frames", type=int, help="use only the first frames of the video (default: all)"
    )
    render.add_argument(
        "--source-frame", type=int, help="frame to animate (default: the first with a face)"
    )

    stream = commands.add_parser(
        "stream",
        help="hold/linear/forecast receivers over a lossy link",
        description="Streams a video's keypoints over a delayed, lossy link to hold, linear "
        "and forecast receivers, swept over delay, send interval and loss; writes report.nc, "
        "three plots and prints a table.\n\n"
        "example: snfseq stream model.pt talk.mp4 -o stream-report/ --held-out 0.2",
    )
    stream.add_argument("model", help="a model from snfseq train (.pt)")
    stream.add_argument("video", help="the video whose keypoints are streamed")
    stream.add_argument("--output", "-o", required=True, help="report folder (created)")
    stream.add_argument(
        "--keypoints", help="the video's landmarks, if already extracted (default: extract them)"
    )
    stream.add_argument("--delays", default="0,2,4,6,8", help="one-way delays, frames")
    stream.add_argument("--every", default="1,2,4", help="send intervals (frames), at delay 2")
    stream.add_argument("--losses", default="0,0.1,0.3", help="packet loss rates, at delay 2")
    stream.add_argument(
        "--burst", type=float, help="mean length of a loss burst (default: independent losses)"
    )
    stream.add_argument(
        "--variant",
        nargs="+",
        default=["none", "paper"],
        choices=list(VARIANTS),
        help="forecast receivers: none (GRU-NF), paper, mala, hmc, rwm (GRU-SNF)",
    )
    stream.add_argument("--samples", type=int, default=100, help="samples per forecast")
    stream.add_argument("--context", type=int, default=8, help="frames the receivers start with")
    stream.add_argument(
        "--frames", type=int, help="use only the first frames of the video (default: all)"
    )
    stream.add_argument(
        "--start-frame", type=int, help="first streamed frame (default: after --context frames)"
    )
    stream.add_argument(
        "--held-out", type=float, help="stream only the last fraction of the video (default: all)"
    )


def _render(args: argparse.Namespace) -> int:
    model = load_model(args.model, args.device)
    keypoints = load_keypoints(args.keypoints) if args.keypoints else None
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
    model = load_model(args.model, args.device)
    transfer.to_mesh(model, [0.0] * model.features)  # a model that cannot be rendered fails now
    if args.keypoints:
        keypoints = load_keypoints(args.keypoints)
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


#: The motion-transfer commands and what runs each (its checks first).
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "render": checked(_render),
    "stream": checked(_stream),
}
