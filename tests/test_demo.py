"""`snfseq demo` end to end at a tiny size: training, forecasts, a rendered video, a stream."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from snfseq import SequenceFlow
from snfseq.demo import DemoConfig, format_results, run_demo
from snfseq.video import read_video

OUTPUTS = (
    "model.pt",
    "metrics.json",
    "forecast.png",
    "forecast_snf.png",
    "fan.png",
    "forecast.mp4",
    "quality_vs_delay.png",
    "quality_vs_bandwidth.png",
    "quality_vs_loss.png",
)


def _no_constant(name: str) -> None:
    raise AssertionError(f"metrics.json holds a bare {name}, which is not JSON")


def test_demo_runs_end_to_end_at_tiny_size(tmp_path) -> None:
    config = dataclasses.replace(DemoConfig.quick(), epochs=2, layers=1)
    results = run_demo(tmp_path, config, progress=False)
    for name in OUTPUTS:
        assert (tmp_path / name).is_file(), name
    saved = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=_no_constant)
    assert saved["forecast_scores"]["GRU-NF"]["kish_ess"] is None  # no weights: null, not NaN
    assert set(saved["forecast_scores"]) == {
        "GRU-NF",
        "GRU-SNF (published)",
        "GRU-SNF (published code, faithful)",
        "GRU-SNF (MALA, Gaussian target)",
    }
    for name, scores in saved["forecast_scores"].items():
        assert 0 < scores["energy_score"] < 1 and 0 < scores["apd"] < 1, name  # [0, 1] frames
        assert scores["min_ade"] <= scores["ade"], name
    nll = saved["heldout_nll_per_dim"]
    assert nll["model"] < nll["gaussian_baseline"]
    assert saved["data"]["videos"] == 2

    # The checkpoint carries its layout: the saved model maps its 20 features to the mesh.
    model = SequenceFlow.load(tmp_path / "model.pt")
    assert model.layout is not None and model.layout.name == "mesh10"
    assert model.to_mesh(np.zeros((1, 20))).shape == (1, 468, 2)

    # The rendered video: every held-out frame after the context, GRU-NF and GRU-SNF scored.
    frames, _ = read_video(tmp_path / "forecast.mp4")
    assert len(frames) == config.render_frames
    rendered = {(r["variant"], r["region"]): r for r in saved["rendered"]["scores"]}
    for variant in ("GRU-NF", "GRU-SNF (paper)"):
        face = rendered[(variant, "face")]
        assert 0 < face["mae"] < 255 and face["mae_best"] <= face["mae"] and face["apd"] > 0
    truth = rendered[("rendered from true keypoints", "face")]
    assert truth["psnr"] > rendered[("GRU-NF", "face")]["psnr"] - 1.0

    # The stream: at delay 0 every receiver has the true keypoints; at delay 2 hold does not.
    delay = saved["streamed"]["delay"]
    assert set(delay) == {"hold", "linear", "GRU-NF mean", "GRU-SNF (paper) mean"}
    for receiver, row in delay.items():
        assert row["settings"] == [0, 2] and row["mesh_error_px"][0] < 1e-6, receiver
    assert delay["hold"]["mesh_error_px"][1] > 0.1
    rates = saved["streamed"]["every"]["kbit_per_second"]
    assert rates[0] > rates[1] > rates[2] > 0  # sending every 1, 2, 4 frames

    text = format_results(results)
    assert "held-out NLL" in text and "GRU-SNF (paper)" in text and "delayed link" in text
