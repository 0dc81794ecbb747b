"""Motion transfer on a real video: forecast keypoints hide the network delay, then render.

Extracts the face mesh of a video (default: the bundled carphone clip), trains a small GRU-NF
on the first 60% of its frames in the mesh10 layout (or loads ``--model``), forecasts every
later frame from the frames up to ``lead`` frames before it (GRU-NF and GRU-SNF as
published), renders the first frame with a face to the true and forecast keypoints, writes
the side-by-side video and a metrics JSON beside it, and prints the pixel scores of the
GRU-SNF paper (MAE best-k-of-N and over all samples, PSNR, SSIM, pixel APD).

Run: ``python examples/motion_transfer.py [VIDEO] [--model model.pt] [--quick]
[--output motion_transfer.mp4]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from snfseq import SequenceFlow, data, landmarks, transfer
from snfseq.files import atomic_write


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("video", nargs="?", help="default: the bundled carphone clip")
    parser.add_argument("--model", help="a trained checkpoint with a face layout")
    parser.add_argument("--output", default="motion_transfer.mp4")
    parser.add_argument("--lead", type=int, default=2, help="network delay in frames")
    parser.add_argument("--quick", action="store_true", help="tiny model, few frames")
    args = parser.parse_args()
    torch.manual_seed(0)
    video = Path(args.video) if args.video else data.face_video("carphone")
    context = 8
    keypoints = landmarks.extract(video, gaps="trim", progress=not args.quick)
    cut = int(0.6 * keypoints.sizes["time"])
    if args.model:
        model = SequenceFlow.load(args.model)
    else:
        [train], layout = transfer.training_keypoints([keypoints.isel(time=slice(0, cut))])
        windows = data.make_windows([train], context, 8, stride=1 if args.quick else 2)
        model = SequenceFlow(
            features=windows.shape[-1],
            hidden=16 if args.quick else 48,
            layers=1,
            transforms=2 if args.quick else 3,
            flow_hidden=(16,) if args.quick else (48, 48),
        )
        model.fit(windows, context=context, epochs=2 if args.quick else 60, progress=False)
        model.layout = layout
    # The forecasts start after the training frames (with their context before them).
    held_out = keypoints.isel(time=slice(cut - context, None))
    if args.quick:
        held_out = held_out.isel(time=slice(0, context + 16))
    num_samples = 4 if args.quick else 20
    scores = transfer.motion_transfer(
        model,
        video,
        keypoints=held_out,
        lead=args.lead,
        context=context,
        num_samples=num_samples,
        best=2 if args.quick else 5,
        tiles=2 if args.quick else 3,
        output=args.output,
        progress=not args.quick,
    )
    metrics = Path(args.output).with_suffix(".json")
    with atomic_write(metrics) as partial:
        partial.write_text(json.dumps(transfer.scores_to_dict(scores), indent=2))
    frames = scores.attrs["frames"]
    print(f"{frames} frames at lead {args.lead}, {num_samples} samples per variant")
    print(transfer.format_scores(scores))
    print(f"wrote {args.output} and {metrics}")


if __name__ == "__main__":
    main()
