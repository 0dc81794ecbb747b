"""Streaming face keypoints over a delayed link: hold, linear extrapolation, or a forecast?

A sender extracts the mesh10 keypoints of every frame of a bundled face video and sends them;
they arrive ``delay`` frames late, only every k-th frame, or get lost. The receiver renders
every frame from a source image and the keypoints it has: the newest ones (hold), a linear
extrapolation of the newest two, or the mean forecast of a GRU-NF / GRU-SNF model. This script
trains that model on the first 80 % of both bundled videos (or loads one with ``--model``),
streams the held-out last 20 % of one video through :func:`snfseq.transfer.stream_report` at
several delays, send rates and loss rates, prints the keypoint error (pixels, full face mesh)
and the PSNR of the rendered face, and plots both against delay, bandwidth and loss
(:func:`snfseq.transfer.plot_stream_report`; ``snfseq stream`` does the same for any video).

Run: ``python examples/streaming.py [--quick] [--video carphone|wolfgang] [--model PATH]
[--output streaming]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from snfseq import SequenceFlow, data, transfer
from snfseq.landmarks import get_layout
from snfseq.video import read_video

CONTEXT = 8


def train_model(quick: bool) -> SequenceFlow:
    """A demo-sized GRU-NF on the first 80 % of both bundled videos (mesh10 keypoints)."""
    layout = get_layout("mesh10")
    train, _ = data.split_sequences(
        data.face_sequences(layout=layout, progress=False), (0.8, 0.2), by="time"
    )
    windows = data.make_windows(train, CONTEXT, 8, stride=2)
    model = SequenceFlow(
        features=windows.shape[-1],
        hidden=16 if quick else 48,
        layers=1,
        dropout=0.1,
        condition_size=16 if quick else 32,
        transforms=2 if quick else 3,
        flow_hidden=(16,) if quick else (48, 48),
    )
    epochs = 4 if quick else 60
    model.fit(windows, context=CONTEXT, epochs=epochs, batch_size=32, lr=3e-3, patience=12)
    model.layout = layout
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small model and sweep (< 1 min)")
    parser.add_argument("--video", default="carphone", choices=data.FACE_VIDEOS)
    parser.add_argument("--model", type=Path, help="a saved SequenceFlow with a mesh10 layout")
    parser.add_argument("--output", type=Path, default=Path("streaming"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.output.mkdir(parents=True, exist_ok=True)
    if args.model is None:
        model = train_model(args.quick)
        model.save(args.output / "model.pt")
        trained = "trained on the first 80% of carphone + wolfgang"
    else:
        model = SequenceFlow.load(args.model)
        trained = f"loaded from {args.model.name}"
    if model.layout is None:
        parser.error("the model has no layout: set model.layout before saving it")
    samples = 20 if args.quick else 100
    delays = [0, 2, 4] if args.quick else [0, 1, 2, 3, 4, 6, 8, 10]
    losses = [0.0, 0.2] if args.quick else [0.0, 0.1, 0.2, 0.3]

    face = data.load_face(args.video, layout=model.layout, progress=False)
    frames, fps = read_video(data.face_video(args.video))
    cut = round(0.8 * face.sizes["time"])  # the model has not seen the frames from here on
    report = transfer.stream_report(
        model,
        frames[: face.sizes["time"]],
        face,
        start=cut,
        delays=delays,
        every=[1, 2, 4],
        losses=losses,
        num_samples=samples,
        context=CONTEXT,
        fps=fps,
        attrs={"source": args.video},
        progress=False,
    )
    last, scored = face.sizes["time"] - 1, report.attrs["first_scored_frame"]
    print(f"{args.video}: held-out frames {cut}..{last} (scored from {scored})")
    print(f"model: {trained}")
    print(transfer.format_stream_report(report))
    written = transfer.plot_stream_report(
        report, args.output, title=f"{args.video} held-out 20%, model {trained}"
    )
    print(f"wrote {', '.join(path.name for path in written)} into {args.output}")


if __name__ == "__main__":
    main()
