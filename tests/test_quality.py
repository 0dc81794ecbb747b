"""Tests for snfseq.motion.quality against independent references.

References: MAE and PSNR written out in numpy, SSIM against a hand-written 7 x 7 window SSIM
on a tiny image and against ``structural_similarity`` on a crop (a rectangular mask),
pixel APD against a double loop over pairs, best-of-k against sorting by hand, face masks
against triangles and disks drawn from their inequalities.
"""

import re
import tracemalloc

import numpy as np
import pytest

from snfseq.motion import quality

H, W = 12, 14


def frames(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, H, W, 3), dtype=np.uint8)


def random_mask(*shape: int, seed: int = 0) -> np.ndarray:
    mask = np.random.default_rng(seed).random((*shape, H, W)) < 0.4
    mask[..., 5, 6] = True  # never empty
    return mask


def reference_mae(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None) -> float:
    diff = np.abs(a.astype(float) - b.astype(float))
    return diff[mask].mean() if mask is not None else diff.mean()


def reference_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None, peak=255.0) -> float:
    squared = (a.astype(float) - b.astype(float)) ** 2
    mse = squared[mask].mean() if mask is not None else squared.mean()
    return 10.0 * np.log10(peak**2 / mse)


# ----------------------------------------------------------------------------- MAE, PSNR


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("name", ["mae", "psnr"])
def test_mae_psnr_match_numpy_formulas(name, masked):
    samples, truth = frames(3, 2, seed=1), frames(2, seed=2)
    mask = random_mask(2, seed=3) if masked else None  # one mask per time step
    actual = getattr(quality, name)(samples, truth, mask=mask)
    formula = reference_mae if name == "mae" else reference_psnr
    expected = [
        [formula(samples[s, t], truth[t], None if mask is None else mask[t]) for t in range(2)]
        for s in range(3)
    ]
    assert actual.shape == (3, 2) and actual.dtype == np.float64
    np.testing.assert_allclose(actual, expected, rtol=1e-12)


def test_psnr_data_range():
    a, b = frames(seed=4), frames(seed=5)
    np.testing.assert_allclose(quality.psnr(a, b, data_range=100), reference_psnr(a, b, None, 100))


# ----------------------------------------------------------------------------- SSIM


def hand_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """SSIM with a 7 x 7 uniform window and sample covariances, over the masked pixels."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i, j in zip(*np.nonzero(mask), strict=True):
        for c in range(3):
            x = a[i - 3 : i + 4, j - 3 : j + 4, c].astype(float).ravel()
            y = b[i - 3 : i + 4, j - 3 : j + 4, c].astype(float).ravel()
            cov = np.cov(x, y)  # ddof = 1, as skimage's use_sample_covariance
            luminance = (2 * x.mean() * y.mean() + c1) / (x.mean() ** 2 + y.mean() ** 2 + c1)
            values.append(luminance * (2 * cov[0, 1] + c2) / (cov[0, 0] + cov[1, 1] + c2))
    return float(np.mean(values))


def test_ssim_matches_hand_written_window():
    pytest.importorskip("skimage", reason="SSIM needs scikit-image (the video extra)")
    a = frames(seed=6)
    b = np.clip(a.astype(int) + np.random.default_rng(7).integers(-40, 41, a.shape), 0, 255)
    b = b.astype(np.uint8)
    interior = np.zeros((H, W), bool)
    interior[3:-3, 3:-3] = True
    mask = random_mask(seed=8)
    np.testing.assert_allclose(quality.ssim(a, b), hand_ssim(a, b, interior), rtol=1e-10)
    expected = hand_ssim(a, b, mask & interior)  # the border is left out, as without a mask
    np.testing.assert_allclose(quality.ssim(a, b, mask=mask), expected, rtol=1e-10)


def test_masked_ssim_is_ssim_of_the_padded_crop():
    metrics = pytest.importorskip("skimage.metrics", reason="SSIM needs the video extra")
    structural_similarity = metrics.structural_similarity

    rng = np.random.default_rng(9)
    truth = rng.integers(0, 256, (2, 24, 20, 3), dtype=np.uint8)
    samples = np.clip(truth + rng.integers(-30, 31, (3, 2, 24, 20, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((24, 20), bool)
    mask[5:15, 4:12] = True
    actual = quality.ssim(samples, truth, mask=mask)
    # The window reaches 3 pixels past the rectangle, and skimage's mean drops 3-pixel borders.
    crop = (slice(2, 18), slice(1, 15))
    expected = [
        [
            structural_similarity(
                samples[s, t][crop], truth[t][crop], channel_axis=-1, data_range=255
            )
            for t in range(2)
        ]
        for s in range(3)
    ]
    assert actual.shape == (3, 2)
    np.testing.assert_allclose(actual, expected, rtol=1e-10)
    full = np.ones((24, 20), bool)
    np.testing.assert_allclose(
        quality.ssim(samples, truth, mask=full), quality.ssim(samples, truth), rtol=1e-12
    )


@pytest.mark.parametrize("masked", [False, True])
def test_identical_frames(masked):
    a = frames(2, seed=10)
    mask = random_mask(seed=11) if masked else None
    np.testing.assert_array_equal(quality.mae(a, a, mask=mask), [0.0, 0.0])
    np.testing.assert_array_equal(quality.psnr(a, a, mask=mask), [np.inf, np.inf])
    pytest.importorskip("skimage", reason="SSIM needs scikit-image (the video extra)")
    np.testing.assert_allclose(quality.ssim(a, a, mask=mask), [1.0, 1.0], rtol=1e-12)


# ----------------------------------------------------------------------------- APD


def loop_apd(samples: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    num, out = samples.shape[0], []
    for t in range(samples.shape[1]):
        pairs = []
        for i in range(num):
            for j in range(i + 1, num):
                diff = np.abs(samples[i, t].astype(float) - samples[j, t].astype(float))
                pairs.append(diff[mask[t]].mean() if mask is not None else diff.mean())
        out.append(np.mean(pairs))
    return np.array(out)


@pytest.mark.parametrize("budget", [1 << 22, 50])
@pytest.mark.parametrize("masked", [False, True])
def test_pixel_apd_matches_pair_loop(monkeypatch, masked, budget):
    monkeypatch.setattr(quality, "_APD_BUDGET", budget)  # 50: many blocks of 7 pixel-channels
    samples = frames(7, 3, seed=12)
    samples[3] = samples[1]  # ties
    mask = random_mask(3, seed=13) if masked else None
    actual = quality.pixel_apd(samples, mask=mask)
    assert actual.shape == (3,)
    np.testing.assert_allclose(actual, loop_apd(samples, mask), rtol=1e-12)


def test_pixel_apd_memory_stays_bounded(monkeypatch):
    monkeypatch.setattr(quality, "_APD_BUDGET", 1 << 12)
    samples = np.random.default_rng(19).integers(0, 256, (40, 2, 64, 64, 3), dtype=np.uint8)
    tracemalloc.start()
    quality.pixel_apd(samples)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # One frame's int64 pair sums (96 KiB) and blocks of 4096 elements; an int64 copy of the
    # 40 samples of a frame would take 3.75 MiB, a pair tensor far more.
    assert peak < 400_000


def test_pixel_apd_of_identical_samples_is_zero():
    samples = np.repeat(frames(1, 2, seed=14), 5, axis=0)
    np.testing.assert_array_equal(quality.pixel_apd(samples), [0.0, 0.0])


# ----------------------------------------------------------------------------- best of k


@pytest.mark.parametrize("metric", ["mae", "psnr", "ssim"])
def test_best_of_matches_sorting_by_hand(metric):
    if metric == "ssim":
        pytest.importorskip("skimage", reason="SSIM needs scikit-image (the video extra)")
    rng = np.random.default_rng(15)
    truth = rng.integers(40, 216, (2, H, W, 3), dtype=np.uint8)
    noise = [7, 30, 0, 15, 2, 22]  # sample 2 equals the truth on every frame
    samples = np.stack(
        [np.clip(truth + rng.integers(-n, n + 1, truth.shape), 0, 255) for n in noise]
    ).astype(np.uint8)
    mask = random_mask(seed=16)
    per_frame = {"mae": quality.mae, "psnr": quality.psnr, "ssim": quality.ssim}[metric]
    scores = [per_frame(sample, truth, mask=mask).mean() for sample in samples]
    ordered = sorted(scores, reverse=metric != "mae")  # best first
    for k in (1, 3, 6):
        best = quality.best_of(samples, truth, metric=metric, k=k, mask=mask)
        np.testing.assert_allclose(best, np.mean(ordered[:k]), rtol=1e-12)
    every = quality.best_of(samples, truth, metric=metric, k=None, mask=mask)
    np.testing.assert_allclose(every, np.mean(scores), rtol=1e-12)
    # The best sample is the exact copy, whatever the metric's direction.
    exact = {"mae": 0.0, "psnr": np.inf, "ssim": 1.0}[metric]
    np.testing.assert_allclose(quality.best_of(samples, truth, metric=metric, k=1), exact)


# ----------------------------------------------------------------------------- face masks


def test_face_mask_triangle_in_pixels_and_normalized():
    xs, ys = np.meshgrid(np.arange(W), np.arange(H))
    triangle = (xs >= 2) & (ys >= 1) & (xs + ys <= 10)  # vertices (2, 1), (9, 1), (2, 8)
    # Extra interior and boundary landmarks do not change the hull; z is ignored.
    points = np.array([[2, 1, 5], [9, 1, 0], [2, 8, 1], [3, 3, 9], [5, 5, 0], [2, 4, 0]], float)
    np.testing.assert_array_equal(quality.face_mask(points, (H, W), normalized=False), triangle)
    normalized = (points[:, :2] + 0.5) / np.array([W, H])
    np.testing.assert_array_equal(quality.face_mask(normalized, (H, W)), triangle)
    flipped = np.stack([points[::-1], points[:, [1, 0, 2]]])  # order does not matter; transpose
    masks = quality.face_mask(flipped, (H, H), normalized=False)
    assert masks.shape == (2, H, H) and masks.dtype == bool
    np.testing.assert_array_equal(masks[0], triangle[:, :H])
    np.testing.assert_array_equal(masks[1], triangle[:, :H].T)


def test_normalized_landmarks_keep_their_edge_pixels():
    # Normalising and scaling back rounds vertices off integer pixel centres for many sizes.
    for height in range(5, 50):  # 47 rounds off without the edge tolerance
        for width in (5, 12, 47):
            points = np.array([[1.0, 1.0], [width - 2, 1.0], [1.0, height - 2]])
            pixels = quality.face_mask(points, (height, width), normalized=False)
            normalized = quality.face_mask((points + 0.5) / [width, height], (height, width))
            np.testing.assert_array_equal(normalized, pixels, err_msg=f"{height} x {width}")


def test_face_mask_margin_is_a_disk_dilation():
    xs, ys = np.meshgrid(np.arange(W), np.arange(H))
    point = np.array([[6.0, 5.0]])
    disk = (xs - 6) ** 2 + (ys - 5) ** 2 <= 2.5**2
    np.testing.assert_array_equal(
        quality.face_mask(point, (H, W), margin=2.5, normalized=False), disk
    )
    square = np.array([[3.0, 3.0], [8.0, 3.0], [8.0, 7.0], [3.0, 7.0]])
    grown = quality.face_mask(square, (H, W), margin=1.5, normalized=False)
    # Within 1.5 of the rectangle [3, 8] x [3, 7]: the Euclidean distance to a box.
    dx = np.maximum(np.maximum(3 - xs, xs - 8), 0)
    dy = np.maximum(np.maximum(3 - ys, ys - 7), 0)
    np.testing.assert_array_equal(grown, dx**2 + dy**2 <= 1.5**2)


# ----------------------------------------------------------------------------- validation


def bad_calls():
    a, b = frames(2, seed=17), frames(2, seed=18)
    mask = np.ones((H, W), bool)
    landmarks = np.zeros((3, 2))
    return {
        "dtype": (lambda: quality.mae(a.astype(np.float32), b), "uint8"),
        "channels": (lambda: quality.psnr(a[..., :2], b[..., :2]), "H, W, 3"),
        "reference shape": (lambda: quality.mae(a, b[:, :-1]), "must end the frames' shape"),
        "reference longer": (lambda: quality.mae(a[0], b), "must end the frames' shape"),
        "mask dtype": (lambda: quality.mae(a, b, mask=mask.astype(np.uint8)), "bool"),
        "mask shape": (lambda: quality.mae(a, b, mask=mask.T), "mask must have shape"),
        "mask broadcast": (lambda: quality.mae(a, b, mask=np.ones((3, H, W), bool)), "broadcast"),
        "empty mask": (lambda: quality.mae(a, b, mask=~mask), "no pixels"),
        "empty frame mask": (lambda: quality.psnr(a, b, mask=np.stack([mask, ~mask])), "no pixels"),
        "mask in SSIM border": (
            lambda: quality.ssim(a, b, mask=np.pad(mask[3:-3, 3:-3], 3) < 1),
            "border",
        ),
        "small SSIM": (lambda: quality.ssim(a[:, :6], b[:, :6]), "7 x 7"),
        "data_range": (lambda: quality.psnr(a, b, data_range=0), "data_range"),
        "one sample": (lambda: quality.pixel_apd(a[:1]), "at least 2 samples"),
        "k > S": (lambda: quality.best_of(a, b[0], k=3), "k must be"),
        "k = 0": (lambda: quality.best_of(a, b[0], k=0), "k must be"),
        "metric": (lambda: quality.best_of(a, b[0], metric="mse", k=1), "metric"),
        "landmarks shape": (lambda: quality.face_mask(np.zeros((4, 4)), (H, W)), "landmarks"),
        "landmarks nan": (lambda: quality.face_mask(landmarks + np.nan, (H, W)), "NaN"),
        "image shape": (lambda: quality.face_mask(landmarks, (H, 0)), "shape"),
        "margin": (lambda: quality.face_mask(landmarks, (H, W), margin=-1), "margin"),
    }


@pytest.mark.parametrize("case", list(bad_calls()))
def test_invalid_arguments_raise_one_line_value_errors(case):
    call, message = bad_calls()[case]
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        call()
    assert "\n" not in str(error.value)
