"""Rate-distortion of real video codecs against the keypoint pipeline, on one clip.

Both sides start from the same decoded frames of a bundled face video (carphone by default):

* Video codecs (PyAV's FFmpeg: libx264, libx265, libvpx-vp9, libsvtav1; any that is missing or
  fails is skipped with a note) encode the clip through :func:`snfseq.video.write_video` at
  target bitrates (``bitrate=``, single pass, each encoder's defaults otherwise, yuv420p); the
  file is decoded with :func:`snfseq.video.read_video` and compared with the original frames.
  The rate reported is the ACTUAL one: file size / clip duration (container included), and,
  beside it, the video stream's packets only (payload, no container), the fairer match for the
  keypoint packets, which carry no container or transport header either.
* The keypoint pipeline: the full MediaPipe face mesh (468 points) is extracted from the clip;
  x, y of every frame (936 features) are coded with :class:`snfseq.motion.KeypointCodec` at a
  few quantisation steps (defaults otherwise: a keyframe every 30 frames), decoded, and every
  frame is rendered with :class:`snfseq.motion.render.Renderer` from the receiver's view: the
  source frame as the receiver has it (frame 0 after JPEG quality 90) and the DECODED landmarks
  of frame 0 as the source mesh. Two rates per point: steady state (keypoint packets only, at
  the clip's frame rate) and amortised (plus the JPEG of the source frame, sent once, spread
  over the clip and over a 60-second call).

Quality: SSIM and PSNR (:mod:`snfseq.motion.quality`) per frame against the original frames,
mean over frames, on the whole frame and on the face region (the convex hull of the original
frame's extracted mesh, :func:`~snfseq.motion.quality.face_mask`).

Verdict: for each keypoint point whose steady-state rate is below 10 kbit/s, each codec's SSIM
is interpolated (linearly in log rate, over the payload rate) at that rate; where a codec never
went that low, the lowest rate it produced is reported instead. The full mesh may not reach
10 kbit/s at all; then the verdict says so.

Run: ``python benchmarks/bench_codecs.py [--quick] [--clip carphone|wolfgang] [--frames N]``;
writes ``results/codecs.json``, ``results/codecs.md`` and ``results/codecs.png``
(``codecs_<clip>*`` for another clip, ``*_quick.*`` with ``--quick``: 30 frames, two bitrates,
libx264 only, two steps).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from snfseq.data import face_video, load_face
from snfseq.landmarks.extract import extract
from snfseq.landmarks.layouts import get_layout
from snfseq.motion.codec import KeypointCodec, bitrate
from snfseq.motion.quality import face_mask, psnr, ssim
from snfseq.motion.render import Renderer
from snfseq.video import read_video, write_video

RESULTS = Path(__file__).parent / "results"
CODECS = ("libx264", "libx265", "libvpx-vp9", "libsvtav1")
BITRATES_KBPS = (5, 10, 20, 50, 100, 200)
# Low-rate configurations a real call falls back to: smaller frames, fewer of them.
LOW_RATE_CONFIGS = ((2, 1, "1/2 size"), (2, 2, "1/2 size, 1/2 fps"))
LOW_RATE_KBPS_TARGETS = (2, 4, 8)
STEPS = (1 / 64, 1 / 256, 1 / 1024)
JPEG_QUALITY = 90
CALL_SECONDS = 60.0
LOW_RATE_KBPS = 10.0
LAYOUTS = ("mesh68", "mesh10")
LAYOUT_STEPS = (1 / 64, 1 / 256)


def quality(frames: np.ndarray, reference: np.ndarray, masks: np.ndarray) -> dict:
    """Mean SSIM and PSNR over frames, whole frame and face region."""
    return {
        "ssim": float(np.mean(ssim(frames, reference))),
        "psnr": float(np.mean(psnr(frames, reference))),
        "ssim_face": float(np.mean(ssim(frames, reference, mask=masks))),
        "psnr_face": float(np.mean(psnr(frames, reference, mask=masks))),
    }


def payload_bytes(path: Path) -> int:
    """Bytes of the video stream's packets (the bitstream without the container)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(packet.size for packet in container.demux(stream) if packet.size)


def resize(frames: np.ndarray, width: int, height: int, interpolation: int) -> np.ndarray:
    return np.stack([cv2.resize(f, (width, height), interpolation=interpolation) for f in frames])


def run_codec(
    codec: str,
    kbps: float,
    frames: np.ndarray,
    fps: float,
    masks: np.ndarray,
    tmp: Path,
    scale: int = 1,
    skip: int = 1,
) -> dict:
    """One codec point; ``scale`` > 1 encodes at 1/scale size (upscaled back, bicubic) and
    ``skip`` > 1 every skip-th frame (each decoded frame repeated), as low-rate calls do."""
    count, height, width = frames.shape[:3]
    duration = count / fps
    small_w, small_h = 2 * round(width / scale / 2), 2 * round(height / scale / 2)
    sent = frames[::skip]
    if scale > 1:
        sent = resize(sent, small_w, small_h, cv2.INTER_AREA)
    tic = time.perf_counter()
    path = write_video(
        tmp / f"{codec}_{kbps:g}_{scale}_{skip}.mp4",
        sent,
        fps / skip,
        codec=codec,
        bitrate=int(kbps * 1000),
    )
    encode_s = time.perf_counter() - tic
    decoded, _ = read_video(path)
    if decoded.shape != sent.shape:
        raise ValueError(f"decoded {decoded.shape}, expected {sent.shape}")
    if scale > 1:
        decoded = resize(decoded, width, height, cv2.INTER_CUBIC)
    decoded = np.repeat(decoded, skip, axis=0)[:count]
    return {
        "codec": codec,
        "scale": scale,
        "skip": skip,
        "target_kbps": kbps,
        "file_bytes": path.stat().st_size,
        "kbps_file": 8 * path.stat().st_size / duration / 1000,
        "kbps_payload": 8 * payload_bytes(path) / duration / 1000,
        "encode_s": encode_s,
        **quality(decoded, frames, masks),
    }


def run_keypoints(
    step: float,
    xy: np.ndarray,
    source: np.ndarray,
    jpeg_bytes: int,
    frames: np.ndarray,
    fps: float,
    masks: np.ndarray,
    layout=None,
    fitted_on: str = "",
) -> dict:
    """One keypoint point: the full mesh, or ``layout``'s compact x/y features on the wire."""
    count = len(xy)
    features = xy if layout is None else np.asarray(layout.reduce(xy), dtype=np.float64)
    points = features.shape[1]
    codec = KeypointCodec(2 * points, step=step)
    packets = codec.encode_sequence(features.reshape(count, -1).astype(np.float64))
    received = codec.decode_sequence(packets).reshape(count, points, 2)
    decoded = received if layout is None else np.asarray(layout.expand(received), np.float64)
    rate = bitrate(packets, fps)
    scale = max(frames.shape[1:3])
    extra = {}
    if layout is not None:
        # How far the layout alone (no coding) is from the extracted mesh.
        uncoded = np.asarray(layout.expand(features), dtype=np.float64)
        extra = {
            "layout_error_px_mean": float(np.linalg.norm(uncoded - xy, axis=-1).mean() * scale),
            "layout_error_px_max": float(np.abs(uncoded - xy).max() * scale),
        }
    renderer = Renderer(source, decoded[0])
    rendered = np.stack([renderer.render(mesh) for mesh in decoded])
    duration = count / fps
    sizes = np.array([len(packet) for packet in packets])
    keyframes = np.arange(count) % codec.keyframe_interval == 0
    jpeg_kbit = 8 * jpeg_bytes / 1000
    name = "mesh" if layout is None else layout.name
    fit = "" if layout is None else f", fit on {fitted_on}"
    return {
        "codec": "keypoints",
        "layout": name,
        "fitted_on": fitted_on or None,
        "keypoints": points,
        "features": 2 * points,
        "label": f"{name} ({points} pts{fit}), step 1/{1 / step:g}",
        "step": step,
        "step_px": step * frames.shape[2],
        "max_error_px": float(np.abs(decoded - xy).max() * scale),
        "mean_error_px": float(np.linalg.norm(decoded - xy, axis=-1).mean() * scale),
        **extra,
        "packet_bytes": int(sizes.sum()),
        "keyframe_bytes_mean": float(sizes[keyframes].mean()),
        "predicted_bytes_mean": float(sizes[~keyframes].mean()) if (~keyframes).any() else math.nan,
        "kbps_steady": rate.kbit_per_second,
        "kbps_amortised_clip": rate.kbit_per_second + jpeg_kbit / duration,
        "kbps_amortised_60s": rate.kbit_per_second + jpeg_kbit / CALL_SECONDS,
        **quality(rendered, frames, masks),
    }


def interpolate(points: list[dict], kbps: float) -> dict:
    """A codec's SSIM at ``kbps`` (payload rate), linear in log rate, or why not."""
    ordered = sorted(points, key=lambda row: row["kbps_payload"])
    rates = np.array([row["kbps_payload"] for row in ordered])
    scores = np.array([row["ssim"] for row in ordered])
    if kbps < rates[0]:
        return {"reachable": False, "min_kbps": float(rates[0]), "ssim_at_min": float(scores[0])}
    if kbps > rates[-1]:
        return {"reachable": False, "max_kbps": float(rates[-1]), "ssim_at_max": float(scores[-1])}
    # Rates can come out non-monotonic in the target; keep the best SSIM reached at or below.
    best = np.maximum.accumulate(scores)
    return {"reachable": True, "ssim": float(np.interp(np.log(kbps), np.log(rates), best))}


def compare(codec_rows: dict[str, list[dict]], keypoint_rows: list[dict]) -> list[dict]:
    """Every keypoint point against every codec at the keypoints' steady-state rate."""
    rows = []
    for row in keypoint_rows:
        for codec, points in codec_rows.items():
            at = interpolate(points, row["kbps_steady"])
            better = row["ssim"] > at["ssim"] if at["reachable"] else None
            rows.append(
                {
                    "label": row["label"],
                    "step": row["step"],
                    "kbps_steady": row["kbps_steady"],
                    "keypoint_ssim": row["ssim"],
                    "codec": codec,
                    **at,
                    "keypoints_better": better,
                }
            )
    return rows


def describe(row: dict) -> str:
    if row["reachable"]:
        word = "beats" if row["keypoints_better"] else "loses to"
        return f"{word} {row['codec']} (SSIM {row['ssim']:.3f})"
    if "min_kbps" in row:
        return (
            f"{row['codec']} never went that low (its minimum {row['min_kbps']:.1f} kbit/s, "
            f"SSIM {row['ssim_at_min']:.3f} there)"
        )
    return (
        f"{row['codec']} not measured that high (its maximum {row['max_kbps']:.1f} kbit/s, "
        f"SSIM {row['ssim_at_max']:.3f})"
    )


def verdict(keypoint_rows: list[dict], comparisons: list[dict]) -> str:
    low = [row for row in keypoint_rows if row["kbps_steady"] < LOW_RATE_KBPS]
    if not low:
        lowest = min(keypoint_rows, key=lambda row: row["kbps_steady"])
        return (
            f"NOT TESTABLE as asked: no keypoint point reaches a steady-state rate below "
            f"{LOW_RATE_KBPS:g} kbit/s. The cheapest ({lowest['label']}) costs "
            f"{lowest['kbps_steady']:.1f} kbit/s, so the question 'does it beat every codec below "
            f"{LOW_RATE_KBPS:g} kbit/s' has no keypoint point to answer it; the comparison at "
            "the rates it does reach is listed below."
        )
    labels = {row["label"] for row in low}
    relevant = [row for row in comparisons if row["label"] in labels]
    reachable = [row for row in relevant if row["reachable"]]
    names = ", ".join(
        f"{row['label']} at {row['kbps_steady']:.1f} kbit/s, SSIM {row['ssim']:.3f}" for row in low
    )
    head = f"{len(low)} keypoint point(s) land below {LOW_RATE_KBPS:g} kbit/s ({names}). "
    if not reachable:
        return head + (
            f"NO CODEC REACHES the keypoint rates below {LOW_RATE_KBPS:g} kbit/s, so there is no "
            "equal-rate comparison; see the per-codec minima below."
        )
    if all(row["keypoints_better"] for row in reachable):
        return head + (
            f"YES: below {LOW_RATE_KBPS:g} kbit/s the keypoint pipeline's SSIM beats every codec "
            "that reaches that rate, at equal steady-state rate (codecs that cannot reach the "
            "rate are listed below)."
        )
    wins = sum(bool(row["keypoints_better"]) for row in reachable)
    return head + (
        f"NO: at those rates a codec has the higher SSIM in {len(reachable) - wins} of "
        f"{len(reachable)} equal-rate comparisons (details below)."
    )


def plot(path: Path, title: str, codec_rows: dict[str, list[dict]], keypoint_rows: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 6))
    palette = dict(zip(CODECS, ("tab:blue", "tab:orange", "tab:green", "tab:gray"), strict=True))
    for codec, points in codec_rows.items():
        ordered = sorted(points, key=lambda row: row["kbps_payload"])
        style = "-" if points[0]["scale"] == 1 else ("--" if points[0]["skip"] == 1 else "-.")
        ax.plot(
            [row["kbps_payload"] for row in ordered],
            [row["ssim"] for row in ordered],
            marker="o",
            linestyle=style,
            color=palette.get(codec.split(" ")[0]),
            markersize=4,
            label=f"{codec} (payload rate)",
        )
    mesh_rows = [row for row in keypoint_rows if row["layout"] == "mesh"]
    ordered = sorted(mesh_rows, key=lambda row: row["kbps_steady"])
    for key, marker, label in (
        ("kbps_steady", "*", "keypoints, steady state"),
        ("kbps_amortised_60s", "^", "keypoints + JPEG source, 60 s call"),
        ("kbps_amortised_clip", "s", "keypoints + JPEG source, over this clip"),
    ):
        ax.plot(
            [row[key] for row in ordered],
            [row["ssim"] for row in ordered],
            linestyle=":",
            color="black",
            marker=marker,
            markersize=11 if marker == "*" else 7,
            label=f"mesh 468, {label}",
        )
    groups: dict[tuple, list[dict]] = {}
    for row in keypoint_rows:
        if row["layout"] != "mesh":
            groups.setdefault((row["layout"], row["keypoints"], row["fitted_on"]), []).append(row)
    markers = iter(("D", "P", "X", "v", "h", "<", ">", "p"))
    colours = iter(("tab:red", "tab:purple", "tab:brown", "tab:olive", "tab:cyan", "tab:pink"))
    for (name, points, fitted_on), rows in groups.items():
        rows = sorted(rows, key=lambda row: row["kbps_steady"])
        ax.plot(
            [row["kbps_steady"] for row in rows],
            [row["ssim"] for row in rows],
            linestyle="--",
            color=next(colours),
            marker=next(markers),
            markersize=8,
            label=f"{name} ({points} pts, fit on {fitted_on}), steady state",
        )
    for row in keypoint_rows:
        ax.annotate(
            f"1/{1 / row['step']:g}",
            (row["kbps_steady"], row["ssim"]),
            textcoords="offset points",
            xytext=(6, -12),
            fontsize=7,
        )
    ax.axvline(LOW_RATE_KBPS, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.set_xlabel("actual rate (kbit/s, log scale)")
    ax.set_ylabel("SSIM vs original frames (mean over frames, whole frame)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="30 frames, 2 bitrates, libx264")
    parser.add_argument("--clip", default="carphone", choices=("carphone", "wolfgang"))
    parser.add_argument("--frames", type=int, default=None, help="first N frames (default all)")
    args = parser.parse_args()
    started = time.perf_counter()
    max_frames = 30 if args.quick and args.frames is None else args.frames
    codecs = ("libx264",) if args.quick else CODECS
    targets = (10, 100) if args.quick else BITRATES_KBPS
    steps = (1 / 64, 1 / 512) if args.quick else STEPS

    video = face_video(args.clip)
    frames, fps = read_video(video, max_frames=max_frames)
    count, height, width = frames.shape[:3]
    mesh = extract(video, max_frames=max_frames, gaps="interpolate", progress=False)
    if len(mesh) != count:
        raise RuntimeError(f"{len(mesh)} meshes for {count} frames")
    xy = mesh.values[..., :2].astype(np.float64)
    masks = face_mask(xy, (height, width))
    ok, jpeg = cv2.imencode(
        ".jpg", cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    source = cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    codec_rows: dict[str, list[dict]] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for codec in codecs:
            rows = []
            for kbps in targets:
                try:
                    rows.append(run_codec(codec, kbps, frames, fps, masks, Path(tmp)))
                except Exception as error:  # noqa: BLE001 - a codec that fails is a note
                    notes.append(f"{codec} at {kbps:g} kbit/s failed: {error}")
            if rows:
                codec_rows[codec] = rows
            else:
                notes.append(f"{codec} skipped: no bitrate worked")
            print(f"{codec}: {len(rows)} points", flush=True)
            for scale, skip, what in () if args.quick else LOW_RATE_CONFIGS:
                rows = []
                for kbps in LOW_RATE_KBPS_TARGETS:
                    try:
                        rows.append(
                            run_codec(codec, kbps, frames, fps, masks, Path(tmp), scale, skip)
                        )
                    except Exception as error:  # noqa: BLE001 - a codec that fails is a note
                        notes.append(f"{codec} ({what}) at {kbps:g} kbit/s failed: {error}")
                if rows:
                    codec_rows[f"{codec} ({what})"] = rows
                print(f"{codec} ({what}): {len(rows)} points", flush=True)
    keypoint_rows = [
        run_keypoints(step, xy, source, len(jpeg), frames, fps, masks) for step in steps
    ]
    other = "wolfgang" if args.clip == "carphone" else "carphone"
    layout_steps = LAYOUT_STEPS[:1] if args.quick else LAYOUT_STEPS
    for name in LAYOUTS:
        own = get_layout(name).fit(xy)
        # load_face fits an unfitted layout in place on that video's (gap-filled) x/y mesh.
        cross = get_layout(name)
        load_face(other, layout=cross, progress=False)
        for layout, fitted_on in ((own, f"{args.clip} itself"), (cross, other)):
            for step in layout_steps:
                keypoint_rows.append(
                    run_keypoints(
                        step, xy, source, len(jpeg), frames, fps, masks, layout, fitted_on
                    )
                )
        print(f"{name}: fitted and coded", flush=True)
    comparisons = compare(codec_rows, keypoint_rows)
    summary = verdict(keypoint_rows, comparisons)
    elapsed = time.perf_counter() - started

    clip = f"{args.clip} {width}x{height}, {count} frames at {fps:.2f} fps"
    result = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "pyav": av.__version__,
            "ffmpeg": ".".join(map(str, av.library_versions["libavcodec"])),
            "opencv": cv2.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
        "settings": {
            "clip": args.clip,
            "frames": count,
            "width": width,
            "height": height,
            "fps": fps,
            "codecs": list(codecs),
            "target_kbps": list(targets),
            "steps": list(steps),
            "layouts": list(LAYOUTS),
            "layout_steps": list(layout_steps),
            "keypoints": int(xy.shape[1]),
            "jpeg_quality": JPEG_QUALITY,
            "jpeg_bytes": len(jpeg),
            "source_psnr_after_jpeg": float(psnr(source, frames[0])),
            "call_seconds": CALL_SECONDS,
            "quick": args.quick,
        },
        "codecs": codec_rows,
        "keypoints": keypoint_rows,
        "comparisons": comparisons,
        "verdict": summary,
        "notes": notes,
        "run_seconds": elapsed,
    }
    RESULTS.mkdir(exist_ok=True)
    stem = "codecs" + ("" if args.clip == "carphone" else f"_{args.clip}")
    stem += f"_{count}f" if args.frames is not None else ""
    stem += "_quick" if args.quick else ""
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2))
    title = (
        f"Rate vs SSIM: video codecs vs keypoints + rendering\n{clip} "
        f"\n(codecs: payload rate; keypoints: x/y of the 468-point mesh or of a compact layout)"
    )
    plot(RESULTS / f"{stem}.png", title, codec_rows, keypoint_rows)

    machine = result["machine"]
    lines = [
        f"# Rate-distortion: video codecs vs the keypoint pipeline ({clip})",
        "",
        f"Machine: {machine['cpu_count']} CPUs ({machine['processor']}), Python "
        f"{machine['python']}, PyAV {machine['pyav']} (libavcodec {machine['ffmpeg']}), OpenCV "
        f"{machine['opencv']}. Run time {elapsed:.0f} s.",
        "",
        "Codecs: `write_video(..., bitrate=target)`, single pass, encoder defaults, yuv420p, "
        "mp4; *(1/2 size)* = the clip downscaled by 2 (area) before encoding and upscaled "
        "back (bicubic) after decoding, *(1/2 size, 1/2 fps)* = also every other frame only, "
        "each decoded frame shown twice: what a low-rate call falls back to, so that the "
        "codecs reach below 10 kbit/s. Rates are ACTUAL: *file* = file size / clip duration "
        "(container included), "
        "*payload* = video packets only. Keypoints: "
        f"{xy.shape[1]}-point MediaPipe mesh, x and y, `KeypointCodec` (keyframe every 30 "
        "frames), rendered by `Renderer` from frame 0 after JPEG q"
        f"{JPEG_QUALITY} ({len(jpeg)} bytes) and the decoded mesh of frame 0. *steady* = "
        "keypoint packets only; *+JPEG clip* / *+JPEG 60 s* = plus the JPEG spread over this "
        f"clip ({count / fps:.1f} s) / over a 60 s call. SSIM and PSNR: mean over frames vs "
        "the original frames; *face* = inside the hull of each frame's extracted mesh.",
        "",
        f"Compact layouts ({', '.join(LAYOUTS)}, `snfseq.landmarks.layouts`): the x/y of the "
        "layout's keypoints (each the mean of a few mesh points) are coded with `KeypointCodec`, "
        "decoded, mapped back to the full mesh with the layout's learned linear map (`expand`) "
        "and rendered like the mesh. *fit on "
        f"{args.clip} itself* = the map learned on this clip's own extracted mesh: an UPPER "
        "BOUND, since a deployed layout would be fitted on other data; *fit on "
        f"{other}* = learned on the other bundled video (`load_face('{other}', layout=...)`), "
        "the honest cross-clip case. Only the steady-state rate is plotted for them; the "
        "JPEG source costs the same as for the mesh.",
        "",
        "| method | target kbit/s | kbit/s (file) | kbit/s (payload / steady) | "
        "+JPEG clip | +JPEG 60 s | SSIM | PSNR dB | SSIM face | PSNR face dB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for codec, rows in codec_rows.items():
        for row in rows:
            lines.append(
                f"| {codec} | {row['target_kbps']:g} | {row['kbps_file']:.1f} | "
                f"{row['kbps_payload']:.1f} | | | {row['ssim']:.3f} | {row['psnr']:.2f} | "
                f"{row['ssim_face']:.3f} | {row['psnr_face']:.2f} |"
            )
    for row in keypoint_rows:
        lines.append(
            f"| keypoints {row['label']} ({row['step_px']:.2f} px) | | | "
            f"{row['kbps_steady']:.1f} | {row['kbps_amortised_clip']:.1f} | "
            f"{row['kbps_amortised_60s']:.1f} | {row['ssim']:.3f} | {row['psnr']:.2f} | "
            f"{row['ssim_face']:.3f} | {row['psnr_face']:.2f} |"
        )
    lines += ["", f"**Verdict:** {summary}", ""]
    for row in keypoint_rows:
        here = [c for c in comparisons if c["label"] == row["label"]]
        lines.append(
            f"- keypoints {row['label']} at {row['kbps_steady']:.1f} kbit/s "
            f"(SSIM {row['ssim']:.3f}): " + "; ".join(describe(c) for c in here) + "."
        )
    lowest = {
        codec: min(rows, key=lambda r: r["kbps_payload"]) for codec, rows in codec_rows.items()
    }
    lines += [
        "",
        "Lowest rate each codec produced: "
        + "; ".join(
            f"{codec} {row['kbps_payload']:.1f} kbit/s payload ({row['kbps_file']:.1f} file) "
            f"for a {row['target_kbps']:g} kbit/s target, SSIM {row['ssim']:.3f}"
            for codec, row in lowest.items()
        )
        + ".",
        "",
        "Keypoint packets: "
        + "; ".join(
            f"{row['label']}: keyframe {row['keyframe_bytes_mean']:.0f} B, "
            f"predicted {row['predicted_bytes_mean']:.0f} B/frame, mesh error after decoding "
            f"mean {row['mean_error_px']:.2f} / max {row['max_error_px']:.2f} px"
            + (
                f" (layout alone, uncoded: mean {row['layout_error_px_mean']:.2f} / max "
                f"{row['layout_error_px_max']:.2f} px)"
                if "layout_error_px_mean" in row
                else ""
            )
            for row in keypoint_rows
        )
        + ".",
    ]
    if notes:
        lines += ["", "Notes: " + " ".join(notes)]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
