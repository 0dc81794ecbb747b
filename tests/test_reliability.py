"""The reliability catalogue: bad inputs across the Python API, each met by one clear error.

Every case is a row of :data:`CASES`: what triggers it, the exception type, and a pattern the
one-line message must match (naming the problem and, for a file, the file). All run in this
process, against one tiny model and forecaster trained once. A case that writes must leave
neither its output nor a temporary file (``.name.*.tmp``) behind; a write that fails midway
(a full disk, simulated) must leave the old file as it was. Video cases beyond these (rotated,
variable frame rate, truncated) live in ``test_robustness.py``.

Cases marked ``xfail(strict=True)`` are known defects outside this module's reach: they fail
today, and the mark fails the run once a fix makes them pass, so that it gets removed.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from snfseq import FlowForecaster, Forecast, Refinement, SequenceFlow, energy, kernels, metrics
from snfseq.data import load_keypoints, save_keypoints
from snfseq.motion.codec import DesyncError, KeypointCodec
from snfseq.video import iter_frames, read_video, write_video

NAN, INF = float("nan"), float("inf")
SMALL = {"hidden": 8, "layers": 1, "transforms": 2, "flow_hidden": (8,)}
# Video is an extra (snfseq[video]); its cases need PyAV, as test_video.py does.
NEEDS_AV = pytest.mark.skipif(find_spec("av") is None, reason="video needs PyAV")


@dataclass
class World:
    """What the cases act on: a trained ``SequenceFlow`` (D = 3) and its checkpoint, a fitted
    ``FlowForecaster`` on two daily series and its checkpoint, and a keypoint codec."""

    model: SequenceFlow
    model_file: Path
    windows: torch.Tensor
    forecaster: FlowForecaster
    forecaster_file: Path
    data: pd.DataFrame
    codec: KeypointCodec
    packets: list[bytes]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    folder = tmp_path_factory.mktemp("world")
    torch.manual_seed(0)
    windows = torch.randn(40, 10, 3).cumsum(1)
    model = SequenceFlow(features=3, **SMALL)
    model.fit(windows, context=4, epochs=1, progress=False)
    index = pd.date_range("2020-01-01", periods=40, freq="D")
    walk = np.random.default_rng(0).normal(size=(40, 2)).cumsum(0) + 20
    data = pd.DataFrame(walk, index=index, columns=["a", "b"])
    forecaster = FlowForecaster(3, 6, **SMALL).fit(data, epochs=1, progress=False, seed=0)
    codec = KeypointCodec(4, step=0.01, keyframe_interval=5)
    packets = codec.encode_sequence(np.random.default_rng(1).normal(0, 0.1, (12, 4)))
    return World(
        model,
        model.save(folder / "model.pt"),
        windows,
        forecaster,
        forecaster.save(folder / "forecaster.pt"),
        data,
        codec,
        packets,
    )


Trigger = Callable[[World, Path], Any]


def case(
    name: str,
    trigger: Trigger,
    error: type[BaseException],
    message: str,
    *,
    writes: str | None = None,
    defect: str | None = None,
) -> Any:
    """One row: ``trigger(world, folder)`` must raise ``error`` with a message matching
    ``message``; ``writes`` names the file in ``folder`` that must not appear; ``defect``
    marks a known defect (strict xfail) and says where the fix belongs."""
    marks = [] if defect is None else [pytest.mark.xfail(strict=True, reason=defect)]
    return pytest.param(trigger, error, message, writes, id=name, marks=marks)


# --- helpers that make bad inputs ----------------------------------------------------------------


def with_value(tensor: torch.Tensor, value: float, where: tuple[int, ...]) -> torch.Tensor:
    changed = tensor.clone()
    changed[where] = value
    return changed


def file_of(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


def cut(source: Path, folder: Path, name: str) -> Path:
    """The first half of ``source``: a download or copy that stopped."""
    whole = source.read_bytes()
    return file_of(folder, name, whole[: len(whole) // 2])


def edited(source: Path, folder: Path, name: str, edit: Callable[[dict], None]) -> Path:
    """A copy of a checkpoint whose payload ``edit`` changed: hand-edited or damaged files."""
    payload = torch.load(source, weights_only=True)
    edit(payload)
    torch.save(payload, folder / name)
    return folder / name


def set_item(keys: tuple[str, ...], value: Any) -> Callable[[dict], None]:
    def edit(payload: dict) -> None:
        for key in keys[:-1]:
            payload = payload[key]
        if value is KeyError:
            del payload[keys[-1]]
        else:
            payload[keys[-1]] = value

    return edit


def nan_weights(payload: dict) -> None:
    next(v for v in payload["state_dict"].values() if v.is_floating_point()).fill_(NAN)


def noise_video(folder: Path) -> Path:
    """Four frames of coloured noise: a video in which no face or body can be found."""
    frames = np.random.default_rng(0).integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    return write_video(folder / "noise.mp4", frames, 10)


def extract(video: Path, **options: Any) -> Any:
    pytest.importorskip("mediapipe")
    from snfseq import landmarks

    return landmarks.extract(video, progress=False, **options)


def decode_after_loss(w: World) -> Any:
    decoder = w.codec.decoder()
    decoder.decode(w.packets[0])
    return decoder.decode(w.packets[2])  # packet 1 was lost


def fit(w: World, windows: Any, **options: Any) -> Any:
    model = SequenceFlow(features=3, **SMALL)
    return model.fit(windows, **({"context": 4, "epochs": 1, "progress": False} | options))


def forecaster_fit(w: World, data: Any, **options: Any) -> Any:
    return FlowForecaster(3, 6, **SMALL).fit(data, epochs=1, progress=False, **options)


def with_cell(data: pd.DataFrame, row: int | slice, value: float) -> pd.DataFrame:
    changed = data.copy()
    changed.iloc[row, 0] = value
    return changed


def refined(w: World, **options: Any) -> Any:
    refinement = Refinement(**options)
    return w.model.forecast(torch.zeros(4, 3), 2, num_samples=4, refinement=refinement)


def saved(thing: Any, path: Path) -> Path:
    torch.save(thing, path)
    return path


def saved_npz(path: Path, **arrays: Any) -> Path:
    np.savez(path, **arrays)
    return path


def saved_npy(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


def saved_nc(path: Path, dataset: xr.Dataset) -> Path:
    dataset.to_netcdf(path)
    return path


def folder_at(path: Path) -> Path:
    path.mkdir()
    return path


KEYPOINTS = np.zeros((4, 3, 2))
UNSAVABLE_ATTRS = xr.DataArray(KEYPOINTS, dims=("time", "keypoint", "coord"), attrs={"o": object()})
S, OBS = torch.randn(10, 2, 3, 4), torch.randn(2, 3, 4)
FRAMES = np.zeros((2, 16, 16, 3), np.uint8)
TABLE = xr.Dataset({"v": (("x", "y"), np.zeros((2, 2)))})  # no keypoint dims


# --- the catalogue -------------------------------------------------------------------------------

# The tables keep one case to a few lines; the formatter would spread each over ten.
# fmt: off
MODEL_CASES = [
    case("fit/nan", lambda w, d: fit(w, with_value(w.windows, NAN, (1, 2, 0))), ValueError,
         r"windows contains NaN or inf \(first at series 1, frame 2, feature 0\)"),
    case("fit/inf", lambda w, d: fit(w, with_value(w.windows, INF, (0, 5, 1))), ValueError,
         r"windows contains NaN or inf \(first at series 0, frame 5, feature 1\)"),
    case("fit/features", lambda w, d: fit(w, torch.zeros(8, 10, 4)), ValueError,
         "windows has 4 features but the model was built for 3"),
    case("fit/no-series", lambda w, d: fit(w, torch.zeros(0, 10, 3)), ValueError,
         r"windows is empty \(no series\)"),
    case("fit/one-frame", lambda w, d: fit(w, torch.zeros(5, 1, 3)), ValueError,
         "windows has 1 frames; at least 2 are needed"),
    case("fit/1-d", lambda w, d: fit(w, torch.zeros(10)), ValueError,
         r"windows must be Tensor\[B, T, D\] \(or \[T, D\]\), got shape \(10,\)"),
    case("fit/strings", lambda w, d: fit(w, np.full((4, 10, 3), "x")), TypeError,
         "windows must be a tensor or array of numbers, got ndarray of dtype <U1"),
    case("fit/complex", lambda w, d: fit(w, w.windows.to(torch.complex64)), TypeError,
         "windows must hold real numbers, got dtype torch.complex64"),
    case("fit/context", lambda w, d: fit(w, w.windows, context=10), ValueError,
         r"context must be in \[1, 9\] for windows of 10 frames"),
    case("fit/epochs", lambda w, d: fit(w, w.windows, epochs=0), ValueError,
         "epochs and batch_size must be >= 1"),
    case("fit/val-nan", lambda w, d: fit(w, w.windows, val_windows=w.windows.clone().fill_(NAN)),
         ValueError, "val_windows contains NaN or inf"),
    case("fit/val-fraction", lambda w, d: fit(w, w.windows, val_fraction=2.0), ValueError,
         "val_fraction"),
    case("forecast/untrained", lambda w, d: SequenceFlow(3, **SMALL).forecast(torch.zeros(4, 3), 2),
         RuntimeError, "the model is not trained"),
    case("forecast/nan", lambda w, d: w.model.forecast(torch.tensor([[0, NAN, 0]] * 4), 2),
         ValueError, r"context contains NaN or inf \(first at series 0, frame 0, feature 1\)"),
    case("forecast/features", lambda w, d: w.model.forecast(torch.zeros(4, 5), 2), ValueError,
         "context has 5 features but the model was built for 3"),
    case("forecast/too-short", lambda w, d: w.model.forecast(torch.zeros(1, 3), 2), ValueError,
         "context has 1 frames; at least 2 are needed"),
    case("forecast/empty", lambda w, d: w.model.forecast(torch.zeros(0, 3), 2), ValueError,
         "context has 0 frames"),
    case("forecast/4-d", lambda w, d: w.model.forecast(torch.zeros(1, 1, 4, 3), 2), ValueError,
         r"context must be Tensor\[B, T, D\]"),
    case("forecast/text", lambda w, d: w.model.forecast("frames.csv", 2), TypeError,
         "context must be a tensor or array of numbers, got str"),
    case("forecast/horizon", lambda w, d: w.model.forecast(torch.zeros(4, 3), 0), ValueError,
         "horizon must be an integer >= 1, got 0"),
    case("forecast/samples", lambda w, d: w.model.forecast(torch.zeros(4, 3), 2, num_samples=0),
         ValueError, "num_samples must be an integer >= 1, got 0"),
    case("forecast/feedback", lambda w, d: w.model.forecast(torch.zeros(4, 3), 2, feedback="x"),
         ValueError, "feedback must be 'sample' or 'mean'"),
    case("forecast/covariates",
         lambda w, d: w.model.forecast(torch.zeros(4, 3), 2, covariates=torch.zeros(1, 6, 2)),
         ValueError, "covariates given, but the model was built without covariates"),
    case("forecast/fractional-horizon", lambda w, d: w.model.forecast(torch.zeros(4, 3), 2.5),
         ValueError, "horizon must be"),
    case("nll/nan", lambda w, d: w.model.nll(w.windows.clone().fill_(NAN), 4), ValueError,
         "windows contains NaN or inf"),
    case("nll/too-short", lambda w, d: w.model.nll(w.windows[:, :3], 4), ValueError,
         "windows has 3 frames; at least 5 are needed"),
    case("nll/context-0", lambda w, d: w.model.nll(w.windows, 0), ValueError, "context must be"),
    case("online/features", lambda w, d: w.model.online(torch.zeros(4, 3)).push(torch.zeros(5)),
         ValueError, "frame has 5 features"),
    case("model/hidden", lambda w, d: SequenceFlow(3, hidden=-1), ValueError, "hidden must be"),
    case("model/option", lambda w, d: SequenceFlow(3, hiden=8), TypeError,
         r"unknown SequenceFlow options \['hiden'\]"),
    case("Forecast/3-d", lambda w, d: Forecast(torch.zeros(10, 5, 3)), ValueError,
         r"samples must be Tensor\[S, B, H, D\], got shape \(10, 5, 3\)"),
]

CHECKPOINT_CASES = [
    case("load/missing", lambda w, d: SequenceFlow.load(d / "absent.pt"), FileNotFoundError,
         r"no checkpoint at .*absent\.pt"),
    case("load/empty", lambda w, d: SequenceFlow.load(file_of(d, "empty.pt", b"")), ValueError,
         r"empty\.pt is not a readable snfseq checkpoint: the file is empty"),
    case("load/garbage", lambda w, d: SequenceFlow.load(file_of(d, "junk.pt", b"junk" * 50)),
         ValueError, r"junk\.pt is not a readable snfseq checkpoint \(corrupt, truncated"),
    case("load/truncated", lambda w, d: SequenceFlow.load(cut(w.model_file, d, "half.pt")),
         ValueError, r"half\.pt is not a readable snfseq checkpoint"),
    case("load/foreign-dict",
         lambda w, d: SequenceFlow.load(saved({"w": torch.ones(2)}, d / "their.pt")),
         ValueError, r"their\.pt is not a checkpoint of snfseq\.SequenceFlow"),
    case("load/pickled-module",
         lambda w, d: SequenceFlow.load(saved(torch.nn.Linear(2, 2), d / "net.pt")),
         ValueError, r"net\.pt is not a readable snfseq checkpoint .*: UnpicklingError"),
    case("load/npz", lambda w, d: SequenceFlow.load(saved_npz(d / "a.npz", a=1)), ValueError,
         r"a\.npz is not a readable snfseq checkpoint"),
    case("load/other-kind", lambda w, d: SequenceFlow.load(w.forecaster_file), ValueError,
         r"forecaster\.pt is not a checkpoint of snfseq\.SequenceFlow"),
    case("load/newer",
         lambda w, d: SequenceFlow.load(
             edited(w.model_file, d, "newer.pt", set_item(("format_version",), 99))),
         ValueError, r"newer\.pt was written by a newer snfseq \(.*\); upgrade snfseq"),
    case("load/version-text",
         lambda w, d: SequenceFlow.load(
             edited(w.model_file, d, "v.pt", set_item(("format_version",), "2"))),
         ValueError, r"v\.pt has a format_version of '2', not an integer"),
    case("load/no-config",
         lambda w, d: SequenceFlow.load(
             edited(w.model_file, d, "bare.pt", set_item(("config",), KeyError))),
         ValueError, r"bare\.pt is damaged: its config is NoneType, not a dict"),
    case("load/state-not-tensor",
         lambda w, d: SequenceFlow.load(
             edited(w.model_file, d, "s.pt", set_item(("state_dict", "point_head.bias"), 1.0))),
         ValueError, r"s\.pt is damaged: state 'point_head\.bias' is float"),
    case("load/shapes",
         lambda w, d: SequenceFlow.load(
             edited(w.model_file, d, "wide.pt", set_item(("config", "hidden"), 9))),
         ValueError, r"wide\.pt does not match its own config \(encoder\.weight_ih_l0"),
    case("load/nan-weights",
         lambda w, d: SequenceFlow.load(edited(w.model_file, d, "nan.pt", nan_weights)),
         ValueError, r"nan\.pt holds NaN or infinite values in '.*' \(did its training diverge"),
    case("load/unknown-option",
         lambda w, d: SequenceFlow.load(
             edited(w.model_file, d, "opt.pt", set_item(("config", "bogus"), 1))),
         ValueError, r"opt\.pt"),
    case("load/bad-config-value",
         lambda w, d: SequenceFlow.load(
             edited(w.model_file, d, "neg.pt", set_item(("config", "hidden"), -1))),
         ValueError, r"neg\.pt"),
    case("save/parent-is-a-file",
         lambda w, d: w.model.save(file_of(d, "notes.txt", b"x") / "m.pt"), NotADirectoryError,
         r"notes\.txt is a file, not a directory \(writing .*m\.pt\)"),
    case("save/onto-a-folder", lambda w, d: w.model.save(folder_at(d / "m.pt")),
         IsADirectoryError, r"m\.pt is a directory; a file cannot replace it"),
]

FORECASTER_CASES = [
    case("predict/unfitted", lambda w, d: FlowForecaster(3, 6).predict(w.data), RuntimeError,
         "this FlowForecaster is not fitted: call fit"),
    case("fit/inf", lambda w, d: forecaster_fit(w, with_cell(w.data, 5, INF)), ValueError,
         "column 'a' of data is infinite at 2020-01-06"),
    case("fit/long-gap", lambda w, d: forecaster_fit(w, with_cell(w.data, slice(5, 10), NAN)),
         ValueError, "column 'a' of data is missing 5 values in a row from 2020-01-06"),
    case("fit/too-short", lambda w, d: forecaster_fit(w, w.data.iloc[:5]), ValueError,
         r"data has 5 timestamps .* needs at least 9"),
    case("fit/empty", lambda w, d: forecaster_fit(w, w.data.iloc[:0]), ValueError,
         "data has no timestamps"),
    case("fit/no-columns", lambda w, d: forecaster_fit(w, w.data[[]]), ValueError,
         r"data has no series \(no columns\)"),
    case("fit/text-column", lambda w, d: forecaster_fit(w, w.data.assign(a="x")), ValueError,
         "column 'a' of data is not numeric"),
    case("fit/constant", lambda w, d: forecaster_fit(w, w.data.assign(a=1.0)), ValueError,
         "column 'a' of data is constant"),
    case("fit/3-d", lambda w, d: forecaster_fit(w, np.zeros((40, 2, 2))), ValueError,
         r"data must be an array \[T\] or \[T, D\], got shape \(40, 2, 2\)"),
    case("fit/covariates-inf",
         lambda w, d: forecaster_fit(w, w.data, covariates=pd.DataFrame(
             {"c": np.full(40, INF)}, index=w.data.index)),
         ValueError, "column 'c' of covariates is infinite"),
    case("predict/nan-at-end", lambda w, d: w.forecaster.predict(with_cell(w.data, -1, NAN)),
         ValueError, "column 'a' of data is missing its last 1 value"),
    case("predict/unknown-column",
         lambda w, d: w.forecaster.predict(w.data.rename(columns={"a": "z"})), ValueError,
         "column 'z' of data was not in the training data"),
    case("predict/missing-column", lambda w, d: w.forecaster.predict(w.data[["a"]]), ValueError,
         "data lacks column 'b' that the forecaster was fit on"),
    case("predict/duplicate-time",
         lambda w, d: w.forecaster.predict(pd.concat([w.data, w.data.iloc[-1:]])), ValueError,
         "timestamp 2020-02-09 appears more than once in data"),
    case("predict/samples", lambda w, d: w.forecaster.predict(w.data, num_samples=0), ValueError,
         "num_samples must be an integer >= 1, got 0"),
    case("new/context-nan", lambda w, d: FlowForecaster(3, NAN), ValueError,
         "context_length must be an integer >= 1, got nan"),
    case("new/option", lambda w, d: FlowForecaster(3, 6, hiden=8), TypeError,
         r"unknown SequenceFlow options \['hiden'\]"),
    case("load/no-fitted-state",
         lambda w, d: FlowForecaster.load(
             edited(w.forecaster_file, d, "f.pt", set_item(("extra", "fitted"), KeyError))),
         ValueError, r"f\.pt is damaged: it lacks the fitted state"),
    case("load/model-checkpoint", lambda w, d: FlowForecaster.load(w.model_file), ValueError,
         r"model\.pt is not a checkpoint of snfseq\.forecasting\.FlowForecaster"),
    case("load/nan-weights",
         lambda w, d: FlowForecaster.load(edited(w.forecaster_file, d, "n.pt", nan_weights)),
         ValueError, r"n\.pt holds NaN or infinite values"),
]

SAMPLER_CASES = [
    case("Refinement/kernel", lambda w, d: Refinement(kernel="gibbs"), ValueError,
         r"kernel must be one of \['hmc', 'mala', 'per-coordinate', 'rwm'\], got 'gibbs'"),
    case("Refinement/steps", lambda w, d: Refinement(steps=-1), ValueError,
         "steps must be >= 0, got -1"),
    case("Refinement/resample", lambda w, d: Refinement(resample=2.0), ValueError,
         r"resample must be a fraction in \(0, 1\] or None, got 2.0"),
    case("Refinement/after", lambda w, d: refined(w, after=[99]), ValueError,
         r"after=\[99\] is outside the flow's 2 layers"),
    case("Refinement/lam", lambda w, d: refined(w, lam=[0.5]), ValueError,
         "lam has 1 values for 2 blocks"),
    case("Refinement/step-nan", lambda w, d: Refinement(step_size=NAN), ValueError, "step_size"),
    case("Refinement/step-negative", lambda w, d: refined(w, step_size=-1.0), ValueError,
         "step_size must be positive"),
    case("Refinement/target-scale-nan", lambda w, d: Refinement(target_scale=NAN), ValueError,
         "target_scale"),
    case("Gaussian/scale", lambda w, d: energy.Gaussian(torch.zeros(2), scale=-1.0), ValueError,
         "scale must be positive and finite, got -1.0"),
    case("Gaussian/int-loc", lambda w, d: energy.Gaussian(torch.zeros(2, dtype=torch.long)),
         ValueError, "loc must be a floating-point Tensor"),
    case("Gaussian/scale-nan", lambda w, d: energy.Gaussian(torch.zeros(2), scale=NAN),
         ValueError, "scale must be positive"),
    case("Gaussian/features",
         lambda w, d: energy.Gaussian(torch.zeros(2))(torch.zeros(5, 3)), ValueError,
         "3 features"),
    case("Sum/empty", lambda w, d: energy.Sum(), ValueError, "Sum needs at least one energy"),
    case("Potential/not-callable", lambda w, d: energy.Potential(3), TypeError,
         "Potential needs a callable, got int"),
    case("Potential/shape",
         lambda w, d: energy.Potential(lambda x: x).value_and_grad(torch.zeros(2, 3)),
         ValueError, "the potential must return one energy per point"),
    case("kernel/step-nan", lambda w, d: kernels.RandomWalkMetropolis(step_size=NAN), ValueError,
         "step_size must be positive and finite, got nan"),
    case("kernel/step-text", lambda w, d: kernels.MALA(step_size="big"), TypeError,
         "step_size must be a float or a Tensor"),
    case("kernel/step-inf", lambda w, d: kernels.RandomWalkMetropolis(step_size=INF), ValueError,
         "step_size"),
    case("kernel/int-state",
         lambda w, d: kernels.MALA(energy.StandardNormal()).transition(torch.zeros(3, 2).long()),
         ValueError, r"z must be a floating-point Tensor\[\.\.\., D\]"),
    case("kernel/no-potential", lambda w, d: kernels.MALA().transition(torch.zeros(3, 2)),
         ValueError, "MALA has no potential"),
    case("kernel/leapfrog", lambda w, d: kernels.HMC(energy.StandardNormal(), num_steps=0),
         ValueError, "num_steps must be a positive int, got 0"),
    case("kernel/target-accept", lambda w, d: kernels.MALA(target_accept=1.5), ValueError,
         r"target_accept must lie in \(0, 1\), got 1.5"),
]

# test_metrics.py has the argument checks of each metric; these are the inputs it leaves out.
METRIC_CASES = [
    case("crps/inf-obs", lambda w, d: metrics.crps(S, OBS.clone().fill_(INF)), ValueError,
         "obs contains NaN or infinite values"),
    case("energy_score/no-samples", lambda w, d: metrics.energy_score(S[:0], OBS), ValueError,
         "this estimator needs at least 1 samples, got S=0"),
    case("crps/fair-one-sample", lambda w, d: metrics.crps(S[:1], OBS, fair=True), ValueError,
         "needs at least 2 samples, got S=1"),
    case("quantile/nan", lambda w, d: metrics.quantile(S, NAN), ValueError,
         r"quantile levels must lie in \[0, 1\], got nan"),
    case("coverage/level", lambda w, d: metrics.coverage(S, OBS, -0.1), ValueError,
         r"interval levels must lie in \[0, 1\]"),
    case("variogram/p-nan", lambda w, d: metrics.variogram_score(S, OBS, p=NAN), ValueError,
         "p must be positive, got nan"),
    case("crps/event-dims", lambda w, d: metrics.crps(S, OBS, event_dims=-1), ValueError,
         "event_dims must be non-negative"),
]

KEYPOINT_CASES = [
    case("load/missing", lambda w, d: load_keypoints(d / "absent.npz"), FileNotFoundError,
         r"keypoint file not found: .*absent\.npz"),
    case("load/suffix", lambda w, d: load_keypoints(d / "clip.json"), ValueError,
         r"unknown keypoint file type '\.json' for .*clip\.json"),
    *[
        case(f"load/{kind}-{suffix}",
             lambda w, d, s=suffix, c=content: load_keypoints(file_of(d, f"clip{s}", c)),
             ValueError, rf"cannot read keypoints from .*clip\{suffix}: {reason}")
        for suffix in (".npz", ".npy", ".nc")
        for kind, content, reason in (
            ("garbage", b"not keypoints" * 9, rf"it is not a \{suffix} file"),
            ("empty", b"", "the file is empty"),
        )
    ],
    *[
        case(f"load/truncated-{suffix}",
             lambda w, d, s=suffix: load_keypoints(
                 cut(save_keypoints(np.zeros((40, 5, 2)), d / f"whole{s}"), d, f"cut{s}")),
             ValueError, rf"cannot read keypoints from .*cut\{suffix}: ")
        for suffix in (".npz", ".npy", ".nc")
    ],
    case("load/empty-zarr", lambda w, d: load_keypoints(folder_at(d / "k.zarr")), ValueError,
         r"cannot read keypoints from .*k\.zarr: "),
    case("load/folder-named-npz", lambda w, d: load_keypoints(folder_at(d / "k.npz")),
         ValueError, r"cannot read keypoints from .*k\.npz: it is a directory"),
    case("load/2-d", lambda w, d: load_keypoints(saved_npy(d / "f.npy", np.zeros((9, 4)))),
         ValueError, r"f\.npy: keypoints must be a 3-D array \[time, keypoint, coord\]"),
    case("load/4-d",
         lambda w, d: load_keypoints(saved_npz(d / "f.npz", keypoints=np.zeros((2, 2, 2, 2)))),
         ValueError, r"f\.npz: keypoints must be a 3-D array"),
    case("load/two-arrays",
         lambda w, d: load_keypoints(saved_npz(d / "t.npz", a=KEYPOINTS, b=KEYPOINTS)),
         ValueError, r"t\.npz: it holds arrays \['a', 'b'\]; expected one named 'keypoints'"),
    case("load/text", lambda w, d: load_keypoints(saved_npy(d / "s.npy", np.full((2, 2, 2), "x"))),
         ValueError, r"s\.npy: keypoints must be real numbers"),
    case("load/complex", lambda w, d: load_keypoints(saved_npy(d / "c.npy", KEYPOINTS + 1j)),
         ValueError, r"c\.npy: keypoints must be real numbers, got dtype complex128"),
    case("load/pickled",
         lambda w, d: load_keypoints(saved_npy(d / "o.npy", np.array([None, 1], dtype=object))),
         ValueError, r"o\.npy: Object arrays cannot be loaded"),
    case("load/dims",
         lambda w, d: load_keypoints(saved_nc(d / "v.nc", TABLE)),
         ValueError, r"v\.nc: keypoints must have dims \('time', 'keypoint', 'coord'\)"),
    case("save/2-d", lambda w, d: save_keypoints(np.zeros((4, 3)), d / "k.npz"), ValueError,
         r"keypoints must be a 3-D array", writes="k.npz"),
    case("save/text", lambda w, d: save_keypoints(np.full((2, 2, 2), "x"), d / "k.nc"),
         ValueError, "keypoints must be real numbers", writes="k.nc"),
    case("save/dims",
         lambda w, d: save_keypoints(xr.DataArray(KEYPOINTS, dims=("t", "k", "c")), d / "k.nc"),
         ValueError, r"keypoints must have dims", writes="k.nc"),
    *[
        case(f"save/attrs-{suffix}",
             lambda w, d, s=suffix: save_keypoints(UNSAVABLE_ATTRS, d / f"k{s}"), ValueError,
             rf"attributes of the keypoints cannot be saved to \{suffix}", writes=f"k{suffix}")
        for suffix in (".npz", ".nc", ".zarr")
    ],
    case("save/suffix", lambda w, d: save_keypoints(KEYPOINTS, d / "k.csv"), ValueError,
         r"unknown keypoint file type '\.csv'", writes="k.csv"),
    case("save/missing-folder", lambda w, d: save_keypoints(KEYPOINTS, d / "new" / "k.npz"),
         FileNotFoundError, r"directory not found: .*new \(writing k\.npz\)"),
    case("save/parent-is-a-file",
         lambda w, d: save_keypoints(KEYPOINTS, file_of(d, "x.txt", b"") / "k.npz"),
         NotADirectoryError, r"x\.txt is a file, not a directory \(writing k\.npz\)"),
]

VIDEO_CASES = [
    case("read/garbage", lambda w, d: read_video(file_of(d, "clip.mp4", os.urandom(3000))),
         ValueError, r"cannot decode .*clip\.mp4 as a video"),
    case("iter/start", lambda w, d: iter_frames(d / "clip.mp4", start=-1), ValueError,
         "start must be an integer >= 0, got -1"),
    case("extract/missing", lambda w, d: extract(d / "absent.mp4"), FileNotFoundError,
         r"video not found: .*absent\.mp4"),
    case("extract/garbage", lambda w, d: extract(file_of(d, "clip.mp4", b"\0" * 3000)),
         ValueError, r"cannot decode .*clip\.mp4 as a video"),
    case("extract/no-face", lambda w, d: extract(noise_video(d), gaps="interpolate"),
         ValueError, r"no face detected in any of the 4 frames of .*noise\.mp4"),
    case("extract/no-pose", lambda w, d: extract(noise_video(d), landmarks="pose", gaps="trim"),
         ValueError, r"no body pose detected in any of the 4 frames of .*noise\.mp4"),
    case("extract/gaps", lambda w, d: extract(d / "clip.mp4", gaps="drop"), ValueError,
         "gaps must be one of"),
    case("write/float-frames", lambda w, d: write_video(d / "o.mp4", FRAMES / 255, 10),
         ValueError, r"frame 0 is float64 \(16, 16, 3\); expected uint8", writes="o.mp4"),
    case("write/fps", lambda w, d: write_video(d / "o.mp4", FRAMES, NAN), ValueError,
         "fps must be a finite number > 0, got nan", writes="o.mp4"),
    case("write/no-frames", lambda w, d: write_video(d / "o.mp4", FRAMES[:0], 10), ValueError,
         "no frames to write", writes="o.mp4"),
    case("write/suffix", lambda w, d: write_video(d / "o.xyz", FRAMES, 10), ValueError,
         r"no video format for the suffix of .*o\.xyz", writes="o.xyz"),
    case("write/missing-folder", lambda w, d: write_video(d / "new" / "o.mp4", FRAMES, 10),
         FileNotFoundError, r"directory not found: .*new \(writing o\.mp4\)"),
]

CODEC_CASES = [
    case("codec/step-nan", lambda w, d: KeypointCodec(4, step=NAN), ValueError,
         "need the scales, step and bound finite and positive, got step=nan"),
    case("codec/step-inf", lambda w, d: KeypointCodec(4, step=INF), ValueError,
         "finite and positive, got step=inf"),
    case("codec/features", lambda w, d: KeypointCodec(2.5), ValueError, "need integer features"),
    case("codec/too-fine", lambda w, d: KeypointCodec(4, bits=30), ValueError,
         "is too many steps to code"),
    case("codec/reference-nan", lambda w, d: KeypointCodec(2, reference=[NAN, 0]), ValueError,
         "reference has NaN or infinite values"),
    case("encode/nan", lambda w, d: w.codec.encoder().encode([NAN, 0, 0, 0]), ValueError,
         "frame has NaN or infinite values"),
    case("encode/shape", lambda w, d: w.codec.encoder().encode([0, 0, 0]), ValueError,
         r"frame must have shape \(4,\), got \(3,\)"),
    case("encode/bound", lambda w, d: w.codec.encoder().encode([5, 0, 0, 0]), ValueError,
         r"frame leaves \[-bound, bound\]"),
    case("encode/sequence-3-d", lambda w, d: w.codec.encode_sequence(np.zeros((2, 2, 4))),
         ValueError, r"frames must have shape \[T, 4\], got \(2, 2, 4\)"),
    case("decode/empty", lambda w, d: w.codec.decoder().decode(b""), ValueError, "empty packet"),
    case("decode/text", lambda w, d: w.codec.decoder().decode("packet"), TypeError,
         "packet must be bytes, got str"),
    case("decode/predicted-first", lambda w, d: w.codec.decoder().decode(w.packets[1]),
         DesyncError, "predicted frame 1 reached a decoder without frame 0"),
    case("decode/after-loss", lambda w, d: decode_after_loss(w), DesyncError,
         "predicted frame 2 reached a decoder without frame 1"),
    case("decode/garbage-keyframe",
         lambda w, d: w.codec.decoder().decode(bytes([0x80]) + b"\xff" * 20), ValueError,
         "corrupt packet"),
]
# fmt: on

TABLES = {
    "SequenceFlow": MODEL_CASES,
    "checkpoint": CHECKPOINT_CASES,
    "FlowForecaster": FORECASTER_CASES,
    "sampling": SAMPLER_CASES,
    "metrics": METRIC_CASES,
    "keypoints": KEYPOINT_CASES,
    "video": VIDEO_CASES,
    "codec": CODEC_CASES,
}
CASES = [
    pytest.param(
        *row.values, id=f"{table}:{row.id}", marks=[*row.marks, *([NEEDS_AV] * (table == "video"))]
    )
    for table, rows in TABLES.items()
    for row in rows
]


def leftovers(folder: Path) -> list[str]:
    """What an interrupted atomic write leaves: hidden files beside its target
    (``.name.*.tmp``, and ``.old`` folders moved aside), and temporaries anywhere."""
    hidden = set(folder.glob(".*")) | set(folder.rglob("*.tmp*"))
    return sorted(str(p.relative_to(folder)) for p in hidden)


# Side warnings of some triggers: low path-weight ESS, a normaliser fitted on one window.
@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore:std\\(\\)")
@pytest.mark.parametrize(("trigger", "error", "message", "writes"), CASES)
def test_a_bad_input_gets_one_clear_error(
    world: World,
    tmp_path: Path,
    trigger: Trigger,
    error: type[BaseException],
    message: str,
    writes: str | None,
) -> None:
    with pytest.raises(error) as raised:
        trigger(world, tmp_path)
    text = str(raised.value)
    assert re.search(message, text), f"{message!r} not in {text!r}"
    assert "\n" not in text, text
    assert leftovers(tmp_path) == []
    if writes is not None:
        assert not (tmp_path / writes).exists()


def test_a_video_without_faces_is_marked_and_warned_about_by_default(tmp_path: Path) -> None:
    video = noise_video(tmp_path)
    with pytest.warns(UserWarning, match=r"no face detected in any of the 4 frames of .*noise"):
        marked = extract(video)
    assert np.isnan(marked.values).all() and not marked.detected.values.any()


# --- a write that fails midway: the disk fills up ------------------------------------------------


def disk_full() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


def fail(*args: Any, **kwargs: Any) -> None:
    raise disk_full()


def begun(write_some: Callable[[Any], None], where: int = 0) -> Callable[..., None]:
    """A writer that writes the start of its output to its path or handle (argument
    ``where``), then finds the disk full."""

    def writer(*args: Any, **kwargs: Any) -> None:
        write_some(args[where])
        raise disk_full()

    return writer


def zarr_begun(store: Any) -> None:
    Path(store).mkdir()
    (Path(store) / ".zgroup").write_text('{"zarr_format": 2}')


def video_begun(monkeypatch: pytest.MonkeyPatch) -> None:
    from snfseq import video

    real = video.pyav_encoder

    def encoder(*args: Any) -> Any:
        _, steps = real(*args)
        return begun(lambda named: Path(named).write_bytes(b"\0\0\0\x18ftypisom")), steps

    monkeypatch.setattr(video, "pyav_encoder", encoder)


@dataclass(frozen=True)
class Writer:
    """A public writer of files, and how to make its payload write fail partway."""

    suffix: str
    write: Callable[[World, Path, int], Any]  # the int varies the content
    fill_disk: Callable[[pytest.MonkeyPatch], None]


WRITERS = {
    "SequenceFlow.save": Writer(
        ".pt",
        lambda w, path, n: SequenceFlow(n + 1, **SMALL).save(path),
        lambda mp: mp.setattr(torch, "save", begun(lambda f: f.write(b"PK\x03\x04"), 1)),
    ),
    "SequenceFlow.save (fsync)": Writer(
        ".pt",
        lambda w, path, n: SequenceFlow(n + 1, **SMALL).save(path),
        lambda mp: mp.setattr(os, "fsync", fail),
    ),
    "FlowForecaster.save": Writer(
        ".pt",
        lambda w, path, n: w.forecaster.save(path),
        lambda mp: mp.setattr(torch, "save", begun(lambda f: f.write(b"PK\x03\x04"), 1)),
    ),
    "save_keypoints .npz": Writer(
        ".npz",
        lambda w, path, n: save_keypoints(np.full((4, 3, 2), n), path),
        lambda mp: mp.setattr(np, "savez", begun(lambda f: f.write(b"PK\x03\x04"))),
    ),
    "save_keypoints .nc": Writer(
        ".nc",
        lambda w, path, n: save_keypoints(np.full((4, 3, 2), n), path),
        lambda mp: mp.setattr(
            xr.DataArray, "to_netcdf", begun(lambda p: Path(p).write_bytes(b"\x89HDF\r\n"), 1)
        ),
    ),
    "save_keypoints .zarr": Writer(
        ".zarr",
        lambda w, path, n: save_keypoints(np.full((4, 3, 2), n), path),
        lambda mp: mp.setattr(xr.Dataset, "to_zarr", begun(zarr_begun, 1)),
    ),
    "write_video": Writer(
        ".mp4",
        lambda w, path, n: write_video(path, np.full((2, 16, 16, 3), 40 * n, np.uint8), 10),
        video_begun,
    ),
}


def contents(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (zarr stores are folders) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def replace_failing_for_temporaries(real: Callable[..., None]) -> Callable[..., None]:
    """``os.replace`` that fails to put a temporary file in place: the last step of a write."""

    def replace(source: Any, target: Any, **kwargs: Any) -> None:
        if Path(source).name.endswith(".tmp"):
            raise disk_full()
        real(source, target, **kwargs)

    return replace


@pytest.mark.parametrize("step", ["payload", "rename"])
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[NEEDS_AV] * n.startswith("write_video")) for n in WRITERS]
)
def test_a_full_disk_keeps_the_old_file_and_leaves_nothing(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, step: str
) -> None:
    writer = WRITERS[name]
    target = tmp_path / f"out{writer.suffix}"
    writer.write(world, target, 1)
    before = contents(tmp_path)
    with monkeypatch.context() as patched:
        if step == "payload":
            writer.fill_disk(patched)
        else:
            patched.setattr(os, "replace", replace_failing_for_temporaries(os.replace))
        with pytest.raises(OSError) as raised:
            writer.write(world, target, 2)
    assert raised.value.errno == errno.ENOSPC
    assert contents(tmp_path) == before
    assert leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == [target.name]


@pytest.mark.parametrize("name", ["SequenceFlow.save", "save_keypoints .npz"])
def test_a_full_disk_on_a_first_write_leaves_nothing(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    writer = WRITERS[name]
    writer.fill_disk(monkeypatch)
    with pytest.raises(OSError, match="No space left on device"):
        writer.write(world, tmp_path / f"out{writer.suffix}", 1)
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_makes_its_missing_folders(world: World, tmp_path: Path) -> None:
    saved = world.model.save(tmp_path / "runs" / "one" / "model.pt")
    assert SequenceFlow.load(saved).config == world.model.config


# --- the command line --------------------------------------------------------------------------
# The CLI is being reworked; these cases hold through it. Each ends with exit status 2 and
# one line on stderr naming the file, and writes nothing.


def cli_cases(folder: Path) -> dict[str, tuple[list[str], str]]:
    keypoints = save_keypoints(np.random.default_rng(0).random((30, 5, 2)), folder / "k.nc")
    junk = file_of(folder, "junk.pt", b"not a checkpoint")
    garbage = file_of(folder, "clip.mp4", b"\0" * 3000)
    flat = folder / "flat.npy"
    np.save(flat, np.zeros((30, 4)))
    model, samples = str(folder / "out" / "model.pt"), str(folder / "out" / "samples.nc")
    return {
        "missing input": (["train", str(folder / "absent.nc"), "-o", model], r"absent\.nc"),
        "corrupt checkpoint": (["forecast", str(junk), str(keypoints), "-o", samples], r"junk\.pt"),
        "unreadable video": (
            ["extract", str(garbage), "-o", samples],
            r"cannot decode .*clip\.mp4",
        ),
        "keypoints of wrong dims": (["train", str(flat), "-o", model], r"flat\.npy: .*3-D"),
    }


@pytest.mark.parametrize(
    "name",
    [
        "missing input",
        "corrupt checkpoint",
        pytest.param("unreadable video", marks=NEEDS_AV),
        "keypoints of wrong dims",
    ],
)
def test_the_cli_ends_a_bad_input_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    from snfseq.cli import main

    (tmp_path / "out").mkdir()
    argv, named = cli_cases(tmp_path)[name]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert re.search(named, error) and "\n" not in error, error
    assert list((tmp_path / "out").iterdir()) == []
