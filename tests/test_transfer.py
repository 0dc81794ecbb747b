"""The motion-transfer pipeline on real face landmarks: features, lead-h forecasts, rendering,
pixel scores, and the gap policy that feeds it."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from snfseq import SequenceFlow, data, landmarks, transfer
from snfseq.motion import quality, read_video

CONTEXT = 4


@pytest.fixture(scope="module")
def mesh() -> xr.DataArray:
    """The first 24 frames of the carphone clip's face mesh (x, y, z; frame numbers as time)."""
    return landmarks.extract(data.face_video("carphone"), max_frames=24, progress=False)


@pytest.fixture(scope="module")
def model(mesh: xr.DataArray) -> SequenceFlow:
    """A tiny GRU-NF on the mesh10 layout fitted on the clip, the layout on the model."""
    [train], layout = transfer.training_keypoints([mesh])
    model = SequenceFlow(features=20, hidden=8, layers=1, transforms=2, flow_hidden=(8,))
    model.fit(data.make_windows([train], CONTEXT, 2), context=CONTEXT, epochs=1, progress=False)
    model.layout = layout
    return model


def _pose(frames: int = 6) -> xr.DataArray:
    values = np.random.default_rng(0).random((frames, 33, 3))
    return xr.DataArray(
        values,
        dims=("time", "keypoint", "coord"),
        coords={"coord": ["x", "y", "z"], "part": ("keypoint", ["pose"] * 33)},
    )


# --- features --------------------------------------------------------------------------------


def test_meshes_are_read_through_the_models_layout(model: SequenceFlow, mesh) -> None:
    read = transfer.model_keypoints(model, mesh)
    expected = model.layout.reduce(mesh.sel(coord=["x", "y"]).values)
    np.testing.assert_allclose(read.values, expected, rtol=1e-6)
    assert read.time.values.tolist() == mesh.time.values.tolist()
    np.testing.assert_array_equal(read.seconds.values, mesh.seconds.values)
    # Keypoints already in the layout (as `data.load_face` gives them) are read as they are.
    np.testing.assert_array_equal(transfer.model_keypoints(model, read).values, read.values)


def test_keypoints_that_do_not_fit_the_model_are_refused(model: SequenceFlow, mesh) -> None:
    with pytest.raises(ValueError, match=r"trained on mesh10 \(20 features\) cannot read 33 pose"):
        transfer.model_keypoints(model, _pose())
    plain = SequenceFlow(features=20, hidden=8, layers=1, transforms=2)
    with pytest.raises(ValueError, match="468-point face mesh.*train it with a layout"):
        transfer.model_keypoints(plain, mesh)
    with pytest.raises(ValueError, match="cannot be rendered"):
        transfer.to_mesh(plain, np.zeros((2, 20)))


def test_training_keypoints_fit_a_layout_on_meshes_only(mesh) -> None:
    [reduced], layout = transfer.training_keypoints([mesh], "auto")
    reference = landmarks.get_layout("mesh10").fit(mesh.sel(coord=["x", "y"]).values)
    np.testing.assert_allclose(layout.expand(reduced.values), reference.expand(reduced.values))
    assert reduced.coord.values.tolist() == ["x", "y"] and layout.name == "mesh10"
    [cut], none = transfer.training_keypoints([_pose()], "auto")
    assert none is None and cut.shape == (6, 33, 2)
    with pytest.raises(ValueError, match="reduces face meshes"):
        transfer.training_keypoints([_pose()], "mesh10")
    with pytest.raises(ValueError, match="together"):
        transfer.training_keypoints([mesh, _pose()])
    [full], no_layout = transfer.training_keypoints([mesh], "none")
    assert no_layout is None and full.sizes["keypoint"] == 468


def test_to_mesh_goes_through_the_layout_or_the_mesh_itself(model: SequenceFlow, mesh) -> None:
    frames = data.to_array(transfer.model_keypoints(model, mesh))
    np.testing.assert_array_equal(transfer.to_mesh(model, frames), model.to_mesh(frames))
    on_mesh = SequenceFlow(features=936, hidden=8, layers=1, transforms=2)
    xy = mesh.sel(coord=["x", "y"]).values
    np.testing.assert_array_equal(transfer.to_mesh(on_mesh, xy.reshape(len(xy), -1)), xy)


# --- lead-h forecasts ------------------------------------------------------------------------


def test_a_lead_h_forecast_of_frame_t_sees_only_frames_up_to_t_minus_h(model, mesh) -> None:
    options = {"context": CONTEXT, "num_samples": 4, "seed": 0, "progress": False}
    before = transfer.lead_forecast(model, mesh, lead=2, **options)
    assert before.dims == ("sample", "time", "keypoint", "coord")
    assert int(before.lead) == 2 and before.time.values.tolist() == list(range(CONTEXT, 24))
    np.testing.assert_array_equal(before.seconds.values, mesh.seconds.values[CONTEXT:])
    changed = mesh.copy(deep=True)
    changed[10:] += 0.01  # frames 10, 11, ... move
    after = transfer.lead_forecast(model, changed, lead=2, **options)
    same = np.all(before.values == after.values, axis=(0, 2, 3))
    # Frame t at lead 2 comes from frames <= t - 2: frames up to 11 cannot see the change.
    assert same[before.time.values <= 11].all() and not same[before.time.values > 11].any()


def test_lead_forecasts_are_seeded_and_leads_share_one_pass(model, mesh) -> None:
    options = {"context": CONTEXT, "num_samples": 3, "progress": False}
    one = transfer.lead_forecast(model, mesh, lead=2, seed=1, **options)
    again = transfer.lead_forecast(model, mesh, lead=2, seed=1, **options)
    other = transfer.lead_forecast(model, mesh, lead=2, seed=2, **options)
    both = transfer.lead_forecast(model, mesh, lead=[1, 2], seed=1, **options)
    np.testing.assert_array_equal(one.values, again.values)
    assert not np.array_equal(one.values, other.values)
    assert both.dims[:2] == ("sample", "lead") and both.lead.values.tolist() == [1, 2]
    np.testing.assert_array_equal(both.sel(lead=2).values, one.values)
    paper = transfer.lead_forecast(model, mesh, lead=1, refinement="paper", seed=0, **options)
    assert paper.log_weight.dims == ("sample", "time") and paper.attrs["refinement"] == "paper"


def test_lead_forecasts_refuse_missing_frames_and_short_contexts(model, mesh) -> None:
    holed = mesh.copy(deep=True)
    holed[7:9] = np.nan
    with pytest.raises(ValueError, match="2 frames of .* have no landmarks .*frames 7, 8"):
        transfer.lead_forecast(model, holed, context=CONTEXT, progress=False)
    with pytest.raises(ValueError, match="use context >= 5"):
        transfer.lead_forecast(model, mesh, lead=4, context=4, progress=False)


def test_trim_drops_undetected_edges_and_keeps_real_frame_numbers(mesh) -> None:
    marked = mesh.copy(deep=True)
    marked[:3] = np.nan
    marked[10:12] = np.nan
    marked[-2:] = np.nan
    trimmed = landmarks.apply_gap_policy(marked, "trim", max_gap=5)
    assert trimmed.time.values.tolist() == list(range(3, 22))
    np.testing.assert_array_equal(trimmed.seconds.values, mesh.seconds.values[3:22])
    assert not np.isnan(trimmed.values).any() and trimmed.interpolated.values.sum() == 2
    kept = landmarks.apply_gap_policy(marked, "trim", max_gap=1)  # a 2-frame gap stays
    assert np.isnan(kept.sel(time=10).values).all() and kept.sizes["time"] == 19


# --- scores and rendering --------------------------------------------------------------------


def test_pixel_scores_match_quality_on_whole_videos() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (3, 12, 12, 3), dtype=np.uint8)
    samples = np.clip(truth + rng.integers(-40, 40, (5, 3, 12, 12, 3)), 0, 255).astype(np.uint8)
    face = np.zeros((12, 12), bool)
    face[2:10, 3:9] = True
    scores = transfer.PixelScores(best=2)
    for t in range(3):
        scores.add("GRU-NF", 1, samples[:, t], truth[t], face)
    summary = scores.summary().sel(variant="GRU-NF", lead=1)
    for region, mask in (("face", face), ("frame", None)):
        row = summary.sel(region=region)
        for metric in ("mae", "psnr", "ssim"):
            best = quality.best_of(samples, truth, metric=metric, k=2, mask=mask)
            every = quality.best_of(samples, truth, metric=metric, k=None, mask=mask)
            assert float(row[f"{metric}_best"]) == pytest.approx(best), (region, metric)
            assert float(row[metric]) == pytest.approx(every), (region, metric)
        apd = quality.pixel_apd(samples, mask=mask).mean()
        assert float(row.apd) == pytest.approx(apd)


def test_source_frame_is_the_first_detected_face_or_a_chosen_one(mesh) -> None:
    marked = mesh.copy(deep=True)
    marked[:2] = np.nan
    marked = marked.assign_coords(detected=("time", ~np.isnan(marked.values).any(axis=(1, 2))))
    assert transfer.source_frame(marked) == 2 and transfer.source_frame(marked, 5) == 5
    with pytest.raises(ValueError, match="source frame 1 .* has no detected face"):
        transfer.source_frame(marked, 1)


def test_rendering_writes_the_side_by_side_video_and_scores_it(model, mesh, tmp_path) -> None:
    clip = mesh.isel(time=slice(0, 10))
    options = {"context": CONTEXT, "num_samples": 3, "progress": False}
    forecast = transfer.lead_forecast(model, clip, lead=1, **options)
    # A "forecast" equal to the truth renders exactly as the truth: same scores, no spread.
    truth = transfer.model_keypoints(model, clip).isel(time=slice(CONTEXT, None))
    perfect = xr.concat([truth, truth], dim="sample").assign_coords(lead=1)
    output = tmp_path / "side.mp4"
    video = data.face_video("carphone")
    panels = {"GRU-NF": forecast, "perfect": perfect}
    scores = transfer.render_video(model, video, clip, panels, output=output, tiles=2, best=2)
    frames, _ = read_video(output)
    assert frames.shape == (6, 3 * (16 + 144), 2 * 176, 3)  # real + truth, GRU-NF, perfect
    assert scores.variant.values.tolist() == [transfer.TRUTH_LABEL, "GRU-NF", "perfect"]
    reference = scores.sel(variant=transfer.TRUTH_LABEL, lead=1)
    exact = scores.sel(variant="perfect", lead=1)
    for metric in ("mae", "psnr", "ssim"):
        np.testing.assert_allclose(exact[metric].values, reference[metric].values)
    assert (exact.apd.values == 0).all() and np.isnan(reference.apd.values).all()
    nf = scores.sel(variant="GRU-NF", lead=1)
    assert (nf.apd.values > 0).all() and (nf.mae_best <= nf.mae).all()
    assert (scores.mae.sel(region="face") < 40).all()  # a rendered face, not noise


def test_motion_transfer_checks_its_options_before_any_work(model, tmp_path) -> None:
    video = data.face_video("carphone")
    with pytest.raises(ValueError, match="best must be between 1 and num_samples = 3"):
        transfer.motion_transfer(model, video, num_samples=3, best=4)
    with pytest.raises(ValueError, match="use context >= 4"):
        transfer.motion_transfer(model, video, lead=3, context=3)
    with pytest.raises(FileNotFoundError, match="directory not found"):
        transfer.motion_transfer(model, video, output=tmp_path / "no" / "out.mp4")
    with pytest.raises(ValueError, match="unknown refinement 'fast'"):
        transfer.motion_transfer(model, video, variants=["none", "fast"])
