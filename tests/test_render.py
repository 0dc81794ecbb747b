"""The piecewise-affine renderer against closed forms (identity, affine) and scikit-image."""

from __future__ import annotations

import numpy as np
import pytest

from snfseq.motion.render import Renderer

cv2 = pytest.importorskip("cv2")
pytest.importorskip("mediapipe", reason="real face landmarks need the landmark extractor")

LATER_FRAMES = (20, 45, 70)


@pytest.fixture(scope="module")
def carphone() -> dict[str, np.ndarray]:
    """Frames 0..70 of the carphone video (RGB) and their face meshes, x/y and x/y/z."""
    from snfseq.data import face_video, load_face

    capture = cv2.VideoCapture(str(face_video("carphone")))
    frames = []
    for _ in range(max(LATER_FRAMES) + 1):
        ok, frame = capture.read()
        assert ok
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    mesh = load_face("carphone", layout="mesh", coords=("x", "y", "z"), progress=False).values
    return {"frames": np.stack(frames), "xyz": mesh, "xy": mesh[..., :2]}


def _normalised(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    return (pixels + 0.5) / (width, height)


def _signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    corners = points[triangles]
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    return e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]


@pytest.mark.parametrize("grid", [1, 3, 4, 8])
def test_the_source_landmarks_render_the_source_frame(carphone, grid):
    frame = carphone["frames"][0]
    renderer = Renderer(frame, carphone["xy"][0], grid=grid)
    out = renderer.render(carphone["xy"][0])
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - frame).mean() < 1.0


def test_an_affine_motion_of_the_landmarks_is_that_affine_warp_over_the_face(carphone):
    frame, face = carphone["frames"][0], carphone["xy"][0]
    height, width = frame.shape[:2]
    pixels = face * (width, height) - 0.5
    centre = pixels.mean(axis=0)
    # Rotation by 6 degrees, 8 % larger, sheared, shifted by (7, -4) pixels, about the face.
    angle = np.deg2rad(6.0)
    linear = 1.08 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = linear @ np.array([[1.0, 0.1], [0.0, 1.0]])
    affine = np.column_stack([linear, centre + [7.0, -4.0] - linear @ centre])
    target = pixels @ linear.T + affine[:, 2]
    renderer = Renderer(frame, face)
    out = renderer.render(_normalised(target, width, height)).astype(int)
    expected = cv2.warpAffine(
        frame, affine, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    ).astype(int)
    hull = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(
        hull, np.round(cv2.convexHull(target.astype(np.float32))).astype(np.int32), 1
    )
    # Pixels within a grid cell (4 pixels) of the hull may blend in ring triangles.
    inside = cv2.erode(hull, np.ones((11, 11), np.uint8)).astype(bool)
    assert inside.sum() > 1000
    assert np.abs(out - expected)[inside].mean() < 0.5
    # The untouched source is far from it: the test can tell a warp from no warp.
    assert np.abs(frame.astype(int) - expected)[inside].mean() > 10


@pytest.fixture(scope="module")
def small_face() -> tuple[np.ndarray, np.ndarray]:
    """A textured 200x240 frame with a small round point cloud in the middle as its "face",
    far enough from the edges that every ring point follows the face fully."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (200, 240, 3), dtype=np.uint8)
    texture = cv2.GaussianBlur(noise, (5, 5), 1.5)
    radius = 0.12 * np.sqrt(rng.uniform(0, 1, 468))
    angle = rng.uniform(0, 2 * np.pi, 468)
    face = 0.5 + np.column_stack([radius * np.cos(angle) * 200 / 240, radius * np.sin(angle)])
    return texture, face


def _moved(frame: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    return cv2.warpAffine(frame, matrix, (width, height), flags=cv2.INTER_LINEAR).astype(int)


def _similarity_about(centre: np.ndarray, degrees: float, scale: float, shift) -> np.ndarray:
    angle = np.deg2rad(degrees)
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.column_stack([linear, centre + np.asarray(shift) - linear @ centre])


def _polygon_mask(points: np.ndarray, shape: tuple[int, ...], erode: int) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    hull = cv2.convexHull(points.astype(np.float32))
    cv2.fillConvexPoly(mask, np.round(hull).astype(np.int32), 1)
    return cv2.erode(mask, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8)).astype(bool)


def test_the_ring_carries_the_head_and_the_frame_edges_stay_put(small_face):
    texture, face = small_face
    size = np.array([240, 200])
    pixels = face * size - 0.5
    # The head turns by 8 degrees, grows by 5 % and moves by (6, 3) pixels.
    matrix = _similarity_about(pixels.mean(axis=0), 8.0, 1.05, (6.0, 3.0))
    target = _normalised(pixels @ matrix[:, :2].T + matrix[:, 2], *size)
    renderer = Renderer(texture, face, margin=0.5)
    out = renderer.render(target).astype(int)
    points, _ = renderer.control_points(target)
    ring = points[renderer.num_points : renderer.num_points + 32]
    inside_ring = _polygon_mask(ring, texture.shape, erode=4)
    assert np.abs(out - _moved(texture, matrix))[inside_ring].mean() < 1.0
    edges = np.ones(texture.shape[:2], bool)
    edges[2:-2, 2:-2] = False
    assert np.abs(out - texture)[edges].mean() < 1.0


def test_a_face_crossing_a_pinned_ring_is_drawn_over_the_background(small_face):
    texture, face = small_face
    # The ring sits about 6 pixels outside the face and stays put; the face moves by 15.
    matrix = np.array([[1.0, 0.0, 15.0], [0.0, 1.0, 0.0]])
    target = face + [15.0 / 240, 0.0]
    renderer = Renderer(texture, face, follow=0.0)
    out = renderer.render(target).astype(int)
    on_face = _polygon_mask(target * (240, 200) - 0.5, texture.shape, erode=5)
    assert np.abs(out - _moved(texture, matrix))[on_face].mean() < 1.0


def _skimage_warp(frame, target, source, triangles):
    """scikit-image's piecewise-affine warp on a given triangulation of the target points."""
    transform_module = pytest.importorskip("skimage.transform")
    from matplotlib.tri import Triangulation

    finder = Triangulation(target[:, 0], target[:, 1], triangles).get_trifinder()

    class GivenTriangulation:
        simplices = triangles

        @staticmethod
        def find_simplex(coords):
            return finder(coords[:, 0], coords[:, 1])

    transform = transform_module.PiecewiseAffineTransform()
    transform._tesselation = GivenTriangulation()
    affine = transform_module.AffineTransform
    if hasattr(affine, "from_estimate"):  # scikit-image >= 0.26
        transform.affines = [affine.from_estimate(target[t], source[t]) for t in triangles]
    else:
        transform.affines = [affine() for _ in triangles]
        for piece, t in zip(transform.affines, triangles):
            assert piece.estimate(target[t], source[t])
    warped = transform_module.warp(frame, transform, order=1, mode="edge", preserve_range=True)
    return np.round(warped).astype(int)


@pytest.mark.parametrize("later", LATER_FRAMES)
@pytest.mark.parametrize(("grid", "bound"), [(1, 0.01), (4, 0.75)])
def test_matches_scikit_image_piecewise_affine_on_real_frames(carphone, later, grid, bound):
    # Measured mean absolute differences (grey levels): below 1e-4 on the exact grid (1);
    # 0.15, 0.40, 0.38 at grid 4 (bilinear map within a grid cell of triangle edges).
    frame, mesh = carphone["frames"][0], carphone["xy"]
    renderer = Renderer(frame, mesh[0], grid=grid)
    target, source = renderer.control_points(mesh[later])
    triangles = renderer.triangles
    # The reference needs a target triangulation without folds (point location is unique).
    assert (
        np.sign(_signed_areas(target, triangles)) == np.sign(_signed_areas(source, triangles))
    ).all()
    reference = _skimage_warp(frame, target, source, triangles)
    out = renderer.render(mesh[later]).astype(int)
    assert np.abs(out - reference).mean() < bound
    # Rendering does move things: the reference is far from the unwarped source.
    assert np.abs(frame.astype(int) - reference).mean() > 2


def test_z_is_ignored_and_render_many_stacks_render(carphone):
    frame, xyz = carphone["frames"][0], carphone["xyz"]
    renderer = Renderer(frame, xyz[0])
    many = renderer.render_many(xyz[list(LATER_FRAMES)])
    assert many.shape == (len(LATER_FRAMES), *frame.shape)
    for out, later in zip(many, LATER_FRAMES):
        np.testing.assert_array_equal(out, renderer.render(carphone["xy"][later]))


def test_invalid_inputs_raise_one_line_errors(carphone):
    frame, face = carphone["frames"][0], carphone["xy"][0]
    renderer = Renderer(frame, face)
    with_nan = face.copy()
    with_nan[10] = np.nan
    cases = [
        (lambda: renderer.render(with_nan), "NaN"),
        (lambda: renderer.render(face[:68]), "68 points, the source has 468"),
        (lambda: renderer.render(np.zeros((468, 4))), "shape"),
        (lambda: renderer.render_many(face), "shape"),
        (lambda: Renderer(frame.astype(np.float32), face), "uint8"),
        (lambda: Renderer(frame[..., 0], face), "uint8"),
        (lambda: Renderer(frame, with_nan), "NaN"),
        (lambda: Renderer(frame, np.repeat(face[:1], 468, axis=0)), "not all on a line"),
        (lambda: Renderer(frame, face, grid=0), "grid"),
        (lambda: Renderer(frame, face, border=1), "border"),
        (lambda: Renderer(frame, face, follow=1.5), "follow"),
        (lambda: Renderer(frame, face, margin=0.0), "margin"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message) as error:
            call()
        assert "\n" not in str(error.value)
