"""Real time end to end: landmarks from a live source, a 100-sample forecast, a rendered frame.

The receiver side of keypoint-based motion transfer, frame by frame on the bundled face
videos, as a live source would deliver them:

1. ``decode``: the next RGB frame from the file (a camera would hand it over instead);
2. ``detect``: MediaPipe FaceMesh in tracking mode (as ``snfseq.landmarks.extract`` runs it);
3. ``forecast``: the mesh reduced to the model's layout (mesh10), pushed into the online
   forecaster (``model.online``: S = 100 sample paths, the next ``lead`` frames, the newest 8
   frames re-encoded at each push, ``window=8``), GRU-NF or GRU-SNF (``Refinement.paper()``);
4. ``render``: the forecast mean of the frame ``lead`` steps ahead, mapped back to the full
   mesh through the model's layout (``model.to_mesh``), warped from the source frame with
   ``motion.Renderer`` at the video's resolution.

Two throughputs are measured, both on this machine in one run: *sequential* (every stage in
one thread, one frame at a time: the latency of a frame) and *pipelined* (detection in one
thread, forecast + render in another, a one-frame queue between them: what a live system on
two cores sustains). Models: the demo-size GRU-NF (trained briefly here on the bundled
videos; its speed does not depend on how well it is trained) and the paper-size model
(D = 60, GRU 3 x 512, 5 coupling layers 3 x 512; untrained weights, timing only) on a
60-component PCA layout of the mesh, so that both run the same detect -> features -> mesh ->
render path.

Run: ``python benchmarks/bench_realtime.py [--quick]``; writes ``results/realtime.json`` and
``results/realtime.md`` (``*_quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import threading
import time
from pathlib import Path

import mediapipe as mp
import numpy as np
import torch
from machine import cpu_name

from snfseq import Refinement, SequenceFlow, data
from snfseq.demo import DemoConfig
from snfseq.landmarks import get_layout
from snfseq.motion import Renderer
from snfseq.video import iter_frames

RESULTS = Path(__file__).parent / "results"
GOAL_FPS = 30.0
LEAD = 3  # frames forecast ahead: 100 ms of network delay hidden at 30 frames/s


def demo_model(epochs: int) -> SequenceFlow:
    """The demo-size GRU-NF on mesh10, trained briefly on the bundled videos."""
    layout = get_layout("mesh10")
    sequences = data.face_sequences(layout=layout, progress=False)
    windows = data.make_windows(sequences, 8, 8, 2)
    model = DemoConfig().build_model(windows.shape[-1])
    model.fit(windows, context=8, epochs=epochs, batch_size=32, lr=3e-3, seed=0, progress=False)
    model.layout = layout
    return model.eval()


def paper_model() -> SequenceFlow:
    """The paper-size model (D = 60), untrained, on a 60-component PCA layout of the mesh."""
    model = SequenceFlow(
        features=60, hidden=512, layers=3, transforms=5, flow_hidden=(512, 512, 512)
    )
    model.normalizer.fitted.fill_(True)
    mesh = np.concatenate(
        [data.load_face(name, layout="mesh", progress=False).values for name in data.FACE_VIDEOS]
    )
    model.layout = get_layout("pca:60").fit(mesh)
    return model.eval()


class Detector:
    """MediaPipe FaceMesh in tracking mode, one frame at a time (as extraction runs it)."""

    def __init__(self) -> None:
        self.mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False,
            max_num_faces=1,
            refine_landmarks=False,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )
        self.last: np.ndarray | None = None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        found = self.mesh.process(frame).multi_face_landmarks
        if found:
            points = found[0].landmark
            self.last = np.array([(p.x, p.y) for p in points], dtype=np.float32)
        if self.last is None:
            raise RuntimeError("no face in the first frame")
        return self.last  # a frame without a face holds the last landmarks

    def close(self) -> None:
        self.mesh.close()


class Receiver:
    """Forecast + render, one frame at a time."""

    def __init__(
        self,
        model: SequenceFlow,
        source: np.ndarray,
        source_mesh: np.ndarray,
        context: np.ndarray,
        refinement: Refinement | None,
    ) -> None:
        self.model = model
        self.layout = model.layout
        self.renderer = Renderer(source, source_mesh)
        self.online = model.online(
            torch.as_tensor(context),
            num_samples=100,
            horizon=LEAD,
            refinement=refinement,
            window=len(context),  # each push re-encodes the newest 8 frames, as recommended
        )
        self.step = 0

    def features(self, mesh: np.ndarray) -> np.ndarray:
        return self.layout.reduce(mesh).reshape(-1).astype(np.float32)

    def forecast(self, mesh: np.ndarray) -> np.ndarray:
        self.step += 1
        fc = self.online.push(self.features(mesh), seed=self.step)
        return fc.samples[:, 0, -1].mean(0).numpy()

    def render(self, features: np.ndarray) -> np.ndarray:
        return self.renderer.render(self.model.to_mesh(features))


def start(name: str, model: SequenceFlow, refinement: Refinement | None, frames: int):
    """Frames of a video, its detector already past the context, and a receiver."""
    video = list(iter_frames(data.face_video(name)))[: frames + 8]
    detector = Detector()
    meshes = [detector(frame) for frame in video[:8]]
    context = np.stack([model.layout.reduce(m).reshape(-1) for m in meshes]).astype(np.float32)
    receiver = Receiver(model, video[0], meshes[0], context, refinement)
    return video[8:], detector, receiver


def sequential(name: str, model: SequenceFlow, refinement, frames: int) -> dict:
    video, detector, receiver = start(name, model, refinement, frames)
    times: dict[str, list[float]] = {"detect": [], "forecast": [], "render": [], "total": []}
    for frame in video:
        t0 = time.perf_counter()
        mesh = detector(frame)
        t1 = time.perf_counter()
        mean = receiver.forecast(mesh)
        t2 = time.perf_counter()
        receiver.render(mean)
        t3 = time.perf_counter()
        for key, value in zip(times, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
            times[key].append(value)
    detector.close()
    row = {f"{k}_ms": 1000 * statistics.median(v[2:]) for k, v in times.items()}
    row["sequential_fps"] = 1000 / row["total_ms"]
    row["frames"] = len(video)
    row["height"], row["width"] = video[0].shape[:2]
    return row


def pipelined(name: str, model: SequenceFlow, refinement, frames: int) -> float:
    """Frames per second with detection and forecast + render in two threads."""
    video, detector, receiver = start(name, model, refinement, frames)
    handoff: queue.Queue = queue.Queue(maxsize=1)

    def produce() -> None:
        for frame in video:
            handoff.put(detector(frame).copy())
        handoff.put(None)

    tic = time.perf_counter()
    thread = threading.Thread(target=produce)
    thread.start()
    done = 0
    while (mesh := handoff.get()) is not None:
        receiver.render(receiver.forecast(mesh))
        done += 1
    thread.join()
    seconds = time.perf_counter() - tic
    detector.close()
    return done / seconds


def decode_ms(name: str, frames: int) -> float:
    times = []
    tic = time.perf_counter()
    for index, _ in enumerate(iter_frames(data.face_video(name))):
        now = time.perf_counter()
        times.append(now - tic)
        tic = now
        if index >= frames:
            break
    return 1000 * statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    frames = 40 if args.quick else 200
    demo = demo_model(epochs=2 if args.quick else 20)
    paper = paper_model()
    variants = {
        "demo GRU-NF": (demo, None),
        "demo GRU-SNF (paper)": (demo, Refinement.paper()),
        "paper-size GRU-NF": (paper, None),
        "paper-size GRU-SNF (paper)": (paper, Refinement.paper()),
    }
    rows = []
    for video in data.FACE_VIDEOS:
        decode = decode_ms(video, frames)
        for label, (model, refinement) in variants.items():
            row = sequential(video, model, refinement, frames)
            row["pipelined_fps"] = pipelined(video, model, refinement, frames)
            row.update(video=video, variant=label, decode_ms=decode)
            rows.append(row)
            print(
                f"{video:9s} {label:28s} detect {row['detect_ms']:6.2f} forecast "
                f"{row['forecast_ms']:6.2f} render {row['render_ms']:5.2f} ms | sequential "
                f"{row['sequential_fps']:5.1f} fps, pipelined {row['pipelined_fps']:5.1f} fps",
                flush=True,
            )
    result = {
        "machine": f"{cpu_name()}, {torch.get_num_threads()} torch thread(s)",
        "torch": torch.__version__,
        "mediapipe": mp.__version__,
        "lead_frames": LEAD,
        "num_samples": 100,
        "goal_fps": GOAL_FPS,
        "rows": rows,
    }
    suffix = "_quick" if args.quick else ""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"realtime{suffix}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"realtime{suffix}.md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    lines = [
        "# Real time end to end: detect + forecast (S = 100) + render",
        "",
        f"Machine: {result['machine']}; torch {result['torch']}, mediapipe "
        f"{result['mediapipe']}. Each frame: MediaPipe FaceMesh (tracking mode), mesh10 "
        "features pushed into `model.online` (100 sample paths, "
        f"{result['lead_frames']} frames ahead, the newest 8 frames re-encoded per push), "
        "the forecast mean mapped back to the mesh and rendered at the video's resolution. "
        "Medians over the frames; decode is reported apart (a camera hands frames over). "
        "*Sequential*: one thread, one frame at a time (a frame's latency is the sum). "
        "*Pipelined*: detection in one thread, forecast + render in a second (two cores).",
        "",
        "| video | size | model | detect ms | forecast ms | render ms | total ms | sequential "
        "fps | pipelined fps |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['video']} | {row['width']}x{row['height']} | {row['variant']} | "
            f"{row['detect_ms']:.2f} | {row['forecast_ms']:.2f} | {row['render_ms']:.2f} | "
            f"{row['total_ms']:.2f} | {row['sequential_fps']:.1f} | {row['pipelined_fps']:.1f} |"
        )
    best = [r for r in result["rows"] if r["variant"] == "demo GRU-NF"]
    met = all(r["pipelined_fps"] >= result["goal_fps"] for r in best)
    lines += [
        "",
        f"Goal: >= {result['goal_fps']:.0f} frames/s end to end with the demo model: "
        + ("met" if met else "not met")
        + " ("
        + ", ".join(f"{r['video']} {r['pipelined_fps']:.1f} pipelined" for r in best)
        + ").",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
