"""GRU-NF vs GRU-SNF in pixels: the GRU-SNF paper's image metrics per forecast lead.

A demo-size GRU-NF (mesh10 layout, as ``snfseq demo`` trains it) is trained on the first 80 %
of both bundled face videos; the held-out last 20 % of each is then forecast frame by frame
``h`` frames ahead (``transfer.lead_forecast``: frame ``t`` from frames ``<= t - h``) with
GRU-NF and with GRU-SNF (``Refinement.paper()``, the published energy with per-sample accept,
and ``Refinement(kernel="mala")``), every sample is rendered from the first held-out frame
(``motion.Renderer``) and scored against the real frame (``transfer.PixelScores``): MAE of
the best ``k`` of ``N`` samples and of all samples, PSNR, SSIM, pixel APD between samples,
on the face region and the whole frame. The frames rendered from the true keypoints give the
ceiling that no forecast can pass (the renderer's own error).

Run: ``python benchmarks/bench_pixels.py [--quick]``; writes ``results/pixels.json`` and
``results/pixels.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from machine import cpu_name

from snfseq import SequenceFlow, data, transfer
from snfseq.demo import DemoConfig
from snfseq.landmarks import get_layout

RESULTS = Path(__file__).parent / "results"
CONTEXT = 8


def train(epochs: int) -> tuple[SequenceFlow, float]:
    layout = get_layout("mesh10")
    sequences = data.face_sequences(layout=layout, progress=False)
    train_part, _ = data.split_sequences(sequences, (0.8, 0.2), by="time")
    windows = data.make_windows(train_part, CONTEXT, 8, 2)
    model = DemoConfig().build_model(windows.shape[-1])
    tic = time.perf_counter()
    model.fit(
        windows,
        context=CONTEXT,
        epochs=epochs,
        batch_size=32,
        lr=3e-3,
        patience=12,
        seed=0,
        progress=False,
    )
    model.layout = layout
    return model.eval(), time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    leads = (1, 4) if args.quick else (1, 2, 4, 6)
    num_samples, best = (4, 2) if args.quick else (10, 3)
    frames = 6 if args.quick else 48
    model, train_s = train(3 if args.quick else 60)
    variants = ("none", "paper", "mala")
    runs = {}
    for video in data.FACE_VIDEOS:
        mesh = data.load_face(video, layout="mesh", progress=False)
        start = int(0.8 * mesh.sizes["time"]) - CONTEXT
        held_out = mesh.isel(time=slice(start, start + CONTEXT + frames))
        scores = transfer.motion_transfer(
            model,
            data.face_video(video),
            keypoints=held_out,
            variants=variants,
            lead=leads,
            context=CONTEXT,
            num_samples=num_samples,
            best=best,
            tiles=1,
            seed=0,
            progress=False,
        )
        runs[video] = transfer.scores_to_dict(scores)
        print(transfer.format_scores(scores), flush=True)
    result = {
        "machine": f"{cpu_name()}, 1 torch thread",
        "torch": torch.__version__,
        "settings": {
            "leads": list(leads),
            "num_samples": num_samples,
            "best_k": best,
            "frames_per_video": frames,
            "context": CONTEXT,
            "variants": list(variants),
            "train_seconds": train_s,
            "quick": args.quick,
        },
        "runs": runs,
        "run_seconds": time.perf_counter() - started,
    }
    suffix = "_quick" if args.quick else ""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"pixels{suffix}.json").write_text(json.dumps(result, indent=2))
    text = markdown(result)
    (RESULTS / f"pixels{suffix}.md").write_text(text)
    print(text)


def markdown(result: dict) -> str:
    settings = result["settings"]
    k, n = settings["best_k"], settings["num_samples"]
    lines = [
        "# GRU-NF vs GRU-SNF in pixels, per forecast lead (held-out face video)",
        "",
        f"Machine: {result['machine']}, torch {result['torch']}; run {result['run_seconds']:.0f}"
        f" s. Demo-size GRU-NF on mesh10 (trained {settings['train_seconds']:.0f} s on the "
        "first 80 % of both bundled videos); the first "
        f"{settings['frames_per_video']} held-out frames of each video forecast `lead` frames "
        f"ahead from the {settings['context']} frames before, {n} samples per frame, every "
        "sample rendered from the first held-out frame and scored against the real frame. "
        f"*MAE best-{k}*: mean MAE of the {k} best of {n} samples (a sample's score is its mean "
        "over the frames; the paper's best-20-of-100 at a smaller size); *all*: mean over "
        "samples. APD: mean absolute pixel difference between samples (diversity). Face "
        "region: the hull of the frame's extracted mesh, dilated. *rendered from true "
        "keypoints*: the renderer's own error, the ceiling for every forecast.",
        "",
    ]
    for video, run in result["runs"].items():
        lines += [
            f"## {video}",
            "",
            f"| variant | lead | region | MAE best-{k} | MAE all | PSNR dB | SSIM | APD |",
            "|---|---:|---|---:|---:|---:|---:|---:|",
        ]
        for row in run["scores"]:
            cells = [
                "-" if row[key] is None else f"{row[key]:.{digits}f}"
                for key, digits in (
                    ("mae_best", 2),
                    ("mae", 2),
                    ("psnr", 2),
                    ("ssim", 3),
                    ("apd", 2),
                )
            ]
            head = f"| {row['variant']} | {row['lead']} | {row['region']} | "
            lines.append(head + " | ".join(cells) + " |")
        lines.append("")
    summary = []
    for video, run in result["runs"].items():
        face = {(r["variant"], r["lead"]): r for r in run["scores"] if r["region"] == "face"}
        for lead in settings["leads"]:
            nf, snf = face.get(("GRU-NF", lead)), face.get(("GRU-SNF (paper)", lead))
            if nf and snf:
                summary.append(
                    f"{video} lead {lead}: face MAE best-{k} GRU-SNF/GRU-NF "
                    f"{snf['mae_best'] / nf['mae_best']:.3f}, all "
                    f"{snf['mae'] / nf['mae']:.3f}, APD {snf['apd'] / nf['apd']:.3f}"
                )
    lines += ["Ratios (below 1: GRU-SNF lower): " + "; ".join(summary) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
