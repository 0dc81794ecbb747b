"""Rendering speed of the piecewise-affine Renderer against scikit-image's warp.

Frames come from the bundled face videos (decoded with OpenCV), face meshes from
``snfseq.data.load_face(..., layout="mesh")`` (extracted and cached on first use). The source
is frame 0; targets are the meshes of the following frames. Sizes: 256x256 (the carphone
frame resized; landmarks are normalised, so they carry over unchanged), and the videos' own
resolutions, carphone 176x144 and wolfgang 640x360.

Measured in one run (median of repeats after warm-up):

* ``Renderer.render`` per frame (default ``grid=4``), and the one-off ``Renderer(...)`` cost;
* scikit-image on the same control points (``renderer.control_points``): a
  ``PiecewiseAffineTransform`` estimated from target to source, then ``warp`` with bilinear
  interpolation, per frame (scikit-image triangulates the target points itself).

Run: ``python benchmarks/bench_render.py [--quick] [--threads N]``; writes
``results/render.json`` and ``results/render.md`` (``render_tN.*`` for N OpenCV threads other
than 1, ``*_quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import skimage
from skimage.transform import PiecewiseAffineTransform, warp

from snfseq.data import face_video, load_face
from snfseq.motion.render import Renderer

RESULTS = Path(__file__).parent / "results"
GOALS = {"fps_256_min": 300.0, "speedup_min": 100.0}


def read_frame(name: str) -> np.ndarray:
    capture = cv2.VideoCapture(str(face_video(name)))
    ok, frame = capture.read()
    capture.release()
    if not ok:
        raise RuntimeError(f"cannot decode {name}")
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def skimage_render(frame: np.ndarray, target: np.ndarray, source: np.ndarray) -> np.ndarray:
    if hasattr(PiecewiseAffineTransform, "from_estimate"):  # scikit-image >= 0.26
        transform = PiecewiseAffineTransform.from_estimate(target, source)
    else:
        transform = PiecewiseAffineTransform()
        transform.estimate(target, source)
    return warp(frame, transform, order=1, mode="edge", preserve_range=True).astype(np.uint8)


def measure(
    label: str,
    frame: np.ndarray,
    mesh: np.ndarray,
    targets: int,
    repeats: int,
    skimage_targets: int,
    skimage_repeats: int,
) -> dict:
    """Times one source frame: setup, render per target, scikit-image per target."""
    height, width = frame.shape[:2]
    meshes = mesh[1 : targets + 1]
    setup = median_seconds(lambda: Renderer(frame, mesh[0]), repeats)
    renderer = Renderer(frame, mesh[0])
    ours = median_seconds(lambda: [renderer.render(m) for m in meshes], repeats) / len(meshes)
    points = [renderer.control_points(m) for m in mesh[1 : skimage_targets + 1]]
    reference = median_seconds(
        lambda: [skimage_render(frame, target, source) for target, source in points],
        skimage_repeats,
    ) / len(points)
    return {
        "case": f"{label} {width}x{height}",
        "width": width,
        "height": height,
        "grid": renderer.grid,
        "control_points": len(points[0][0]),
        "triangles": len(renderer.triangles),
        "render_ms": 1000 * ours,
        "render_fps": 1 / ours,
        "init_ms": 1000 * setup,
        "skimage_ms": 1000 * reference,
        "speedup_vs_skimage": reference / ours,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="few targets, few repeats")
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads (default: 1)")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    if args.quick:
        targets, repeats, skimage_targets, skimage_repeats = 10, 3, 1, 1
    else:
        targets, repeats, skimage_targets, skimage_repeats = 100, 7, 4, 3

    cases = []
    carphone = load_face("carphone", layout="mesh", progress=False).values
    wolfgang = load_face("wolfgang", layout="mesh", progress=False).values
    carphone_frame = read_frame("carphone")
    square = cv2.resize(carphone_frame, (256, 256), interpolation=cv2.INTER_AREA)
    for label, frame, mesh in (
        ("carphone resized", square, carphone),
        ("carphone", carphone_frame, carphone),
        ("wolfgang", read_frame("wolfgang"), wolfgang),
    ):
        cases.append(
            measure(label, frame, mesh, targets, repeats, skimage_targets, skimage_repeats)
        )
    square_case = cases[0]
    result = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "opencv_threads": cv2.getNumThreads(),
            "opencv": cv2.__version__,
            "numpy": np.__version__,
            "scikit_image": skimage.__version__,
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
        "settings": {
            "grid": cases[0]["grid"],
            "targets": targets,
            "repeats": repeats,
            "skimage_targets": skimage_targets,
            "skimage_repeats": skimage_repeats,
            "quick": args.quick,
        },
        "cases": cases,
        "goals": GOALS,
        "goals_met": {
            "fps_256": square_case["render_fps"] >= GOALS["fps_256_min"],
            "speedup": all(c["speedup_vs_skimage"] >= GOALS["speedup_min"] for c in cases),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if args.threads == 1 else f"_t{args.threads}"
    suffix += "_quick" if args.quick else ""
    (RESULTS / f"render{suffix}.json").write_text(json.dumps(result, indent=2))
    machine = result["machine"]
    lines = [
        f"# Rendering speed (piecewise-affine warp, grid {cases[0]['grid']})",
        "",
        f"Machine: {machine['cpu_count']} CPUs ({machine['processor']}), "
        f"{machine['opencv_threads']} OpenCV thread(s), OpenCV {machine['opencv']}, numpy "
        f"{machine['numpy']}, scikit-image {machine['scikit_image']}, Python "
        f"{machine['python']}. Median of {repeats} runs over {targets} target frames "
        f"(scikit-image: {skimage_repeats} runs over {skimage_targets}).",
        "",
        "| case | control points | triangles | render ms | frames/s | init ms | "
        "scikit-image ms | speedup |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cases:
        lines.append(
            f"| {c['case']} | {c['control_points']} | {c['triangles']} | {c['render_ms']:.2f} | "
            f"{c['render_fps']:.0f} | {c['init_ms']:.1f} | {c['skimage_ms']:.0f} | "
            f"{c['speedup_vs_skimage']:.0f}x |"
        )
    met = result["goals_met"]
    lines += [
        "",
        f"Goals: >= {GOALS['fps_256_min']:.0f} frames/s at 256x256: "
        f"{'met' if met['fps_256'] else 'NOT met'} ({square_case['render_fps']:.0f}); "
        f">= {GOALS['speedup_min']:.0f}x scikit-image in every case: "
        f"{'met' if met['speedup'] else 'NOT met'} "
        f"(lowest {min(c['speedup_vs_skimage'] for c in cases):.0f}x).",
    ]
    (RESULTS / f"render{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
