"""Overlay pictures: exact pixels of drawn landmarks, grid layout, captions, side-by-side video."""

from __future__ import annotations

import numpy as np
import pytest

from snfseq.motion.overlay import draw_landmarks, label, side_by_side, tile

cv2 = pytest.importorskip("cv2")

BAR = 16


def _frames(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("radius", [0, 1, 2])
def test_draw_landmarks_marks_exactly_the_disk_and_skips_nan(radius: int) -> None:
    frame = np.full((10, 12, 3), 50, np.uint8)
    x, y = 4, 6  # pixel (x, y) lies at normalised ((x + 0.5) / W, (y + 0.5) / H); 0.3 off it
    landmarks = np.array([[(x + 0.8) / 12, (y + 0.8) / 10, 0.3], [np.nan, 0.5, 0.0]])
    marked = draw_landmarks(frame, landmarks, color=(255, 0, 7), radius=radius)
    rows, columns = np.mgrid[:10, :12]
    expected = (columns - x) ** 2 + (rows - y) ** 2 <= radius**2
    changed = (marked != frame).any(axis=-1)
    np.testing.assert_array_equal(changed, expected)
    assert (marked[expected] == (255, 0, 7)).all()
    assert (frame == 50).all()  # the input is left alone
    pixels = draw_landmarks(frame, [[x, y]], color=(255, 0, 7), radius=radius, normalized=False)
    np.testing.assert_array_equal(pixels, marked)


def test_draw_landmarks_with_only_nan_points_changes_nothing() -> None:
    frame = _frames(1, 8, 8)[0]
    np.testing.assert_array_equal(draw_landmarks(frame, np.full((5, 2), np.nan)), frame)
    with pytest.raises(ValueError, match="landmarks must have shape"):
        draw_landmarks(frame, np.zeros((5, 4)))


def test_tile_places_frames_row_by_row_and_pads_empty_cells() -> None:
    cells = [np.full((3, 4, 3), 10 * (index + 1), np.uint8) for index in range(5)]
    grid = tile(cells, columns=2, fill=255)
    assert grid.shape == (9, 8, 3)
    blocks = grid.reshape(3, 3, 2, 4, 3).transpose(0, 2, 1, 3, 4)  # [row, column, H, W, 3]
    assert [int(blocks[r, c].min()) for r in range(3) for c in range(2)] == [
        10,
        20,
        30,
        40,
        50,
        255,
    ]
    assert all((blocks[r, c] == blocks[r, c, 0, 0]).all() for r in range(3) for c in range(2))
    assert tile(cells, columns=7).shape == (3, 28, 3)
    assert tile(cells[:1], columns=1).shape == (3, 4, 3)
    with pytest.raises(ValueError, match="frame 1"):
        tile([cells[0], np.zeros((3, 5, 3), np.uint8)], columns=2)


def test_label_puts_the_text_in_a_bar_above_the_unchanged_frame() -> None:
    frame = _frames(1, 30, 120)[0]
    truth, sample = label(frame, "ground truth"), label(frame, "GRU-SNF sample 3")
    assert truth.shape == sample.shape == (BAR + 30, 120, 3)
    np.testing.assert_array_equal(truth[BAR:], frame)
    assert truth[:BAR].any() and (truth[:BAR].max(axis=-1) > 128).sum() > 20  # visible text
    assert (truth[:BAR] != sample[:BAR]).any()
    np.testing.assert_array_equal(label(frame, "ground truth"), truth)
    # Too long for the frame: drawn smaller, so the right margin of the bar stays black.
    long = label(frame, "GRU-SNF sample 3, horizon 8, temperature 0.8, context 16")
    assert long[:BAR, :5].any() and not long[:BAR, -2:].any()
    assert label(frame, "x", bar_height=24).shape == (54, 120, 3)


def test_side_by_side_shows_truth_and_each_sample_labelled() -> None:
    truth = _frames(4, 20, 30, seed=1)
    nf, snf, copy = _frames(5, 20, 30, seed=2), _frames(5, 20, 30, seed=3), _frames(1, 20, 30)
    nf, snf = nf[:, None].repeat(4, 1) + 0, snf[:, None].repeat(4, 1) + 0  # [S, T, H, W, 3]
    nf[:, 2] = 7  # a time step that differs from the others
    cell = (BAR + 20, 30)
    frames = list(side_by_side(truth, {"GRU-NF": nf, "GRU-SNF": snf}, samples=3))
    assert len(frames) == 4
    assert all(frame.shape == (3 * cell[0], 3 * cell[1], 3) for frame in frames)
    for step, frame in enumerate(frames):
        cells = frame.reshape(3, cell[0], 3, cell[1], 3).transpose(0, 2, 1, 3, 4)
        np.testing.assert_array_equal(cells[0, 0], label(truth[step], "ground truth"))
        assert not cells[0, 1:].any()  # the truth's row is padded black
        for row, (name, panel) in enumerate((("GRU-NF", nf), ("GRU-SNF", snf)), start=1):
            for sample in range(3):
                expected = label(panel[sample, step], f"{name} sample {sample + 1}")
                np.testing.assert_array_equal(cells[row, sample], expected)
    flat = list(side_by_side(truth, {"copy": copy.repeat(4, 0), "GRU-NF": nf}, columns=2))
    assert len(flat) == 4 and flat[0].shape == (3 * cell[0], 2 * cell[1], 3)
    np.testing.assert_array_equal(flat[1][: cell[0], cell[1] :], label(copy[0], "copy"))
    with pytest.raises(ValueError, match="panel 'GRU-NF'"):
        side_by_side(truth, {"GRU-NF": nf[:, :3]})


def test_side_by_side_video_of_rendered_carphone_frames(tmp_path) -> None:
    pytest.importorskip("mediapipe", reason="real face landmarks need the landmark extractor")
    from snfseq.data import face_video
    from snfseq.landmarks import extract
    from snfseq.motion.render import Renderer
    from snfseq.video import read_video, write_video

    video = face_video("carphone")
    frames, fps = read_video(video, max_frames=6)
    mesh = extract(video, max_frames=6, progress=False).values
    renderer = Renderer(frames[0], mesh[0])
    rendered = np.stack([renderer.render(points) for points in mesh[1:]])
    marked = np.stack([draw_landmarks(f, m, radius=0) for f, m in zip(rendered, mesh[1:])])
    panels = {"rendered": rendered, "rendered + mesh": marked}
    composed = side_by_side(frames[1:], panels, columns=3)
    path = write_video(tmp_path / "side.mp4", composed, fps, crf=12)
    decoded, decoded_fps = read_video(path)
    height, width = BAR + 144, 176
    assert decoded.shape == (5, height, 3 * width, 3) and decoded_fps == pytest.approx(fps)
    # The truth tile and the rendered tile read back close to what was composed.
    error = np.abs(decoded[:, BAR:height, :width].astype(int) - frames[1:]).mean()
    assert error < 4
    error = np.abs(decoded[:, BAR:, width : 2 * width].astype(int) - rendered).mean()
    assert error < 4
    # Each tile's caption reads back closest to its own text.
    captions = ("ground truth", "rendered", "rendered + mesh")
    bars = [label(frames[1], text)[:BAR].astype(int) for text in captions]
    for index in range(3):
        bar = decoded[0, :BAR, index * width : (index + 1) * width]
        errors = [np.abs(bar - other).mean() for other in bars]
        assert int(np.argmin(errors)) == index, errors
    # The marked tile carries the mesh in green: far greener than the plain rendered one.
    green = decoded[..., 1].astype(int) - decoded[..., 0] / 2 - decoded[..., 2] / 2
    assert (green[:, BAR:, 2 * width :] > 100).sum() > 10 * (
        green[:, BAR:, width : 2 * width] > 100
    ).sum()
