"""Known-in-advance covariates: read by the encoder and the condition, never forecast."""

from __future__ import annotations

import math

import pytest
import torch

from snfseq import Refinement, SequenceFlow
from snfseq.snf import ForecastStep

CONTEXT, HORIZON = 4, 5
SLOPES = torch.tensor([2.0, -1.0])  # x_t = SLOPES * z_t + noise: the covariate drives the frame
TINY = {"hidden": 16, "layers": 1, "dropout": 0.0, "transforms": 2, "flow_hidden": (16,)}


def _driven(count: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows ``[N, T, 2]`` driven by a random covariate ``[N, T, 1]`` known in advance."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(count, length, 1, generator=generator)
    return SLOPES * z + 0.1 * torch.randn(count, length, 2, generator=generator), z


@pytest.fixture(scope="module")
def driven() -> dict:
    """A model that reads the covariate, one that does not, and held-out windows."""
    windows, z = _driven(384, 12, seed=0)
    models = {}
    for channels in (1, 0):
        torch.manual_seed(0)
        model = SequenceFlow(features=2, covariates=channels, **TINY)
        model.fit(
            windows[:320],
            context=CONTEXT,
            covariates=z[:320] if channels else None,
            epochs=40,
            lr=1e-2,
            progress=False,
            device="cpu",
        )
        models[channels] = model
    return {"with": models[1], "without": models[0], "test": windows[320:], "test_z": z[320:]}


def _plain_forecast(model, context, covariates, horizon, num_samples, seed):
    """GRU-NF sampling written out (GRU, residual, frames+deltas): the encoder reads
    ``[x_t, dx_t, z_t]``, the condition ``[h_{t-1}, z_t]``; ``covariates: [B, T + H, K]``."""
    torch.manual_seed(seed)
    norm, series, length = model.normalizer, context.shape[0], context.shape[1]
    z = None
    if covariates is not None:
        z = model.covariate_scaler.standardize(covariates)

    def encode(frames, before, state, first, rows):
        deltas = torch.diff(frames, dim=1, prepend=before) / norm.delta_scale
        inputs = [frames, deltas]
        if z is not None:
            inputs.append(z[:, first : first + frames.shape[1]].repeat(rows, 1, 1))
        return model.encoder(torch.cat(inputs, -1), state)

    with torch.no_grad():
        loc = norm.location(context)
        x = norm.normalize(context, loc)
        out, state = encode(x, x[:, :1], None, 0, 1)
        state = state.repeat(1, num_samples, 1)
        h, previous = out[:, -1].repeat(num_samples, 1), x[:, -1].repeat(num_samples, 1)
        frames = []
        for step in range(horizon):
            head = (
                h if z is None else torch.cat([h, z[:, length + step].repeat(num_samples, 1)], -1)
            )
            noise = torch.randn(num_samples * series, model.features)
            y, _ = model.flow.sample_from(noise, model.condition(head))
            frame = previous + y * norm.delta_scale
            frames.append(frame)
            fed = frame.unsqueeze(1)
            out, state = encode(fed, previous.unsqueeze(1), state, length + step, num_samples)
            h, previous = out[:, 0], frame
        paths = torch.stack(frames, 1).reshape(num_samples, series, horizon, -1)
        return norm.denormalize(paths, loc)


def _future(z_context: torch.Tensor, path: list[float]) -> torch.Tensor:
    """The context's covariates ``[B, T, 1]`` followed by the same future ``path`` for all."""
    ahead = torch.tensor(path).reshape(1, -1, 1).expand(z_context.shape[0], -1, -1)
    return torch.cat([z_context, ahead], 1)


def test_without_covariates_the_model_is_the_plain_one(tmp_path) -> None:
    plain = SequenceFlow(features=3, **TINY)
    names = {k: tuple(v.shape) for k, v in plain.state_dict().items() if "flow." not in k}
    assert plain.config.covariates == 0
    assert names == {
        "encoder.weight_ih_l0": (48, 6),  # frames and deltas only
        "encoder.weight_hh_l0": (48, 16),
        "encoder.bias_ih_l0": (48,),
        "encoder.bias_hh_l0": (48,),
        "condition.0.weight": (64, 16),
        "condition.0.bias": (64,),
        "point_head.weight": (3, 16),
        "point_head.bias": (3,),
        "normalizer.scale": (3,),
        "normalizer.delta_scale": (3,),
        "normalizer.fitted": (),
    }
    # With covariates, the same names plus the scaler; only the input widths grow by K.
    wide = SequenceFlow(features=3, covariates=2, **TINY)
    shapes = {k: tuple(v.shape) for k, v in wide.state_dict().items()}
    assert set(shapes) == set(plain.state_dict()) | {
        "covariate_scaler.mean",
        "covariate_scaler.scale",
    }
    assert shapes["encoder.weight_ih_l0"] == (48, 8)
    assert shapes["condition.0.weight"] == (64, 18)
    assert shapes["point_head.weight"] == (3, 18)
    assert all(shapes[k] == tuple(v.shape) for k, v in plain.state_dict().items() if "flow." in k)

    # No covariate argument is needed, and a seeded forecast is the plain GRU-NF sampler's.
    windows = torch.randn(40, 10, 3).cumsum(1)
    plain.fit(windows, context=4, epochs=1, progress=False, device="cpu")
    context = windows[:2, :4]
    fc = plain.forecast(context, horizon=3, num_samples=5, seed=4)
    expected = _plain_forecast(plain, context, None, horizon=3, num_samples=5, seed=4)
    torch.testing.assert_close(fc.samples, expected, rtol=0, atol=0)

    # A checkpoint written before covariates existed (no such config field) loads unchanged.
    payload = torch.load(plain.save(tmp_path / "plain.pt"), weights_only=True)
    del payload["config"]["covariates"]
    torch.save(payload, tmp_path / "old.pt")
    old = SequenceFlow.load(tmp_path / "old.pt")
    assert old.config.covariates == 0
    again = old.forecast(context, horizon=3, num_samples=5, seed=4)
    torch.testing.assert_close(again.samples, fc.samples, rtol=0, atol=0)


def test_a_known_covariate_lowers_the_held_out_nll(driven) -> None:
    with_covariate = driven["with"].nll(driven["test"], CONTEXT, driven["test_z"]).mean()
    without = driven["without"].nll(driven["test"], CONTEXT).mean()
    # The frame is 0.1-noise around SLOPES * z: measured -0.44 with the covariate, 0.78 without.
    assert with_covariate < without - 0.8, (float(with_covariate), float(without))


def test_frame_t_reads_its_own_covariates_and_the_earlier_ones(driven) -> None:
    model = driven["with"]
    windows, z = driven["test"][:4], driven["test_z"][:4]
    changed = z.clone()
    changed[:, 7] += 1.0
    with torch.no_grad():
        before, _ = model._teacher_forced(windows, CONTEXT, model.covariate_scaler.standardize(z))
        after, _ = model._teacher_forced(
            windows, CONTEXT, model.covariate_scaler.standardize(changed)
        )
    # Column j scores frame j + 1: frames 1..6 never see z_7; frame 7 reads it in its
    # condition, frames 8.. through the encoder state.
    torch.testing.assert_close(before[:, :6], after[:, :6], rtol=0, atol=0)
    for column in range(6, 11):
        assert not torch.allclose(before[:, column], after[:, column]), column


def test_a_forecast_reads_each_frames_covariates_where_the_design_says(driven) -> None:
    model = driven["with"]
    context, covariates = driven["test"][:3, :CONTEXT], driven["test_z"][:3, : CONTEXT + 4]
    fc = model.forecast(context, 4, 6, seed=5, covariates=covariates)
    expected = _plain_forecast(model, context, covariates, horizon=4, num_samples=6, seed=5)
    torch.testing.assert_close(fc.samples, expected, rtol=1e-5, atol=1e-5)


def test_the_forecast_follows_the_covariates_of_its_horizon(driven) -> None:
    model = driven["with"]
    context, z_context = driven["test"][:3, :CONTEXT], driven["test_z"][:3, :CONTEXT]
    path = [-1.5, -0.75, 0.0, 0.75, 1.5]
    fc = model.forecast(context, HORIZON, 200, seed=0, covariates=_future(z_context, path))
    expected = SLOPES * torch.tensor(path).reshape(1, -1, 1)
    error = (fc.samples.mean(0) - expected).abs()
    assert error.max() < 0.5, error  # a lag of one frame would be 1.5 off
    up = model.forecast(context, HORIZON, 100, seed=0, covariates=_future(z_context, [1.0] * 5))
    down = model.forecast(context, HORIZON, 100, seed=0, covariates=_future(z_context, [-1.0] * 5))
    gap = (up.samples.mean(0) - down.samples.mean(0)).mean((0, 1))
    torch.testing.assert_close(gap, 2 * SLOPES, rtol=0.2, atol=0.0)
    # Frames after the horizon are not read.
    longer = torch.cat([_future(z_context, path), torch.full((3, 4, 1), 9.0)], 1)
    same = model.forecast(context, HORIZON, 200, seed=0, covariates=longer)
    torch.testing.assert_close(same.samples, fc.samples, rtol=0, atol=0)


def test_shapes_and_errors(driven) -> None:
    model, plain = driven["with"], driven["without"]
    windows, z = driven["test"], driven["test_z"]
    context, covariates = windows[:2, :CONTEXT], z[:2, : CONTEXT + HORIZON]
    fc = model.forecast(context, HORIZON, 6, covariates=covariates, feedback="mean")
    assert fc.samples.shape == (6, 2, HORIZON, 2)
    assert model.forecast(context[0], 2, 3, covariates=z[0, :6]).samples.shape == (3, 1, 2, 2)
    c, step = model.first_step(context, 3, covariates=z[:2, : CONTEXT + 1])
    assert c.shape == (6, model.config.condition_size) and step.yhat.shape == (6, 2)
    c, yhat = model.condition_on(context, z[:2, : CONTEXT + 1])
    assert c.shape == (2, model.config.condition_size) and yhat.shape == (2, 2)
    assert model.nll(windows[:5], CONTEXT, z[:5]).shape == (5,)

    with pytest.raises(ValueError, match=r"built with covariates=1: pass covariates, Tensor\["):
        model.forecast(context, HORIZON)
    with pytest.raises(ValueError, match="covariates given, but the model was built without"):
        plain.forecast(context, HORIZON, covariates=covariates)
    with pytest.raises(
        ValueError, match="have 3 channels but the model was built for covariates=1"
    ):
        model.forecast(context, HORIZON, covariates=covariates.expand(-1, -1, 3))
    long_context = torch.randn(2, 16, 2)
    with pytest.raises(
        ValueError, match="^covariates cover 20 frames; context 16 . horizon 8 need 24$"
    ):
        model.forecast(long_context, 8, covariates=torch.zeros(2, 20, 1))
    with pytest.raises(ValueError, match="covariates have 1 series, the frames 2"):
        model.forecast(context, HORIZON, covariates=covariates[:1])
    holed = covariates.clone()
    holed[1, 3, 0] = math.nan
    with pytest.raises(ValueError, match=r"NaN or inf \(first at series 1, frame 3, channel 0\)"):
        model.forecast(context, HORIZON, covariates=holed)
    with pytest.raises(ValueError, match=r"must be Tensor\[B, T, K\]"):
        model.forecast(context, HORIZON, covariates=torch.zeros(9))
    with pytest.raises(
        ValueError, match="covariates cover 11 frames; windows of 12 frames need 12"
    ):
        model.nll(windows[:5], CONTEXT, z[:5, :11])
    with pytest.raises(
        ValueError, match="covariates cover 13 frames; windows of 12 frames need 12"
    ):
        model.nll(windows[:5], CONTEXT, torch.cat([z[:5], z[:5, :1]], 1))
    with pytest.raises(ValueError, match="context 4 . horizon 1 need 5"):
        model.first_step(context, 2, covariates=z[:2, :CONTEXT])
    with pytest.raises(ValueError, match="built with covariates=1"):
        model.fit(windows, context=CONTEXT, epochs=1, progress=False)
    with pytest.raises(ValueError, match="built with covariates=1: pass val_covariates"):
        model.fit(windows, covariates=z, val_windows=windows, epochs=1, progress=False)
    with pytest.raises(ValueError, match="covariates must be >= 0"):
        SequenceFlow(features=2, covariates=-1)


def test_a_column_constant_in_training_keeps_a_finite_scale() -> None:
    windows, z = _driven(40, 8, seed=1)
    holiday = torch.zeros_like(z)  # never set in the training data
    model = SequenceFlow(features=2, covariates=2, **TINY)
    model.fit(windows, context=3, covariates=torch.cat([z, holiday], -1), epochs=1, progress=False)
    # Statistics of the training part (the last 4 windows validate), per channel.
    trained = z[:36].reshape(-1)
    expected_mean = torch.tensor([float(trained.mean()), 0.0])
    expected_scale = torch.tensor([float(trained.std()), 1.0])
    torch.testing.assert_close(model.covariate_scaler.mean, expected_mean)
    torch.testing.assert_close(model.covariate_scaler.scale, expected_scale)
    future = torch.cat([z[:2, :6], torch.ones(2, 6, 1)], -1)  # the flag set in the forecast
    assert torch.isfinite(model.forecast(windows[:2, :3], 3, 4, covariates=future).samples).all()


def test_save_and_load_keep_the_covariates(driven, tmp_path) -> None:
    model = driven["with"]
    context, covariates = driven["test"][:2, :CONTEXT], driven["test_z"][:2, : CONTEXT + 3]
    loaded = SequenceFlow.load(model.save(tmp_path / "covariates.pt"))
    assert loaded.config == model.config and loaded.config.covariates == 1
    torch.testing.assert_close(loaded.covariate_scaler.scale, model.covariate_scaler.scale)
    a = model.forecast(context, 3, 8, seed=2, covariates=covariates)
    b = loaded.forecast(context, 3, 8, seed=2, covariates=covariates)
    torch.testing.assert_close(a.samples, b.samples, rtol=0, atol=0)
    torch.testing.assert_close(
        loaded.nll(driven["test"], CONTEXT, driven["test_z"]),
        model.nll(driven["test"], CONTEXT, driven["test_z"]),
    )


def test_refinements_aim_at_the_covariate_conditioned_prediction(driven) -> None:
    model = driven["with"]
    context, z_context = driven["test"][:2, :CONTEXT], driven["test_z"][:2, :CONTEXT]
    # The target's point prediction reads the first forecast frame's covariates.
    _, up = model.first_step(context, 4, covariates=_future(z_context, [1.0]))
    _, down = model.first_step(context, 4, covariates=_future(z_context, [-1.0]))
    assert isinstance(up, ForecastStep)
    scaled = model.covariate_scaler.standardize(torch.tensor([1.0]))
    with torch.no_grad():
        loc, _, top, _ = model._encode_context(
            context, model.covariate_scaler.standardize(z_context)
        )
        head = torch.cat([top, scaled.expand(2, 1)], -1)
    torch.testing.assert_close(up.yhat, model.point_head(head).repeat(4, 1))
    assert ((up.yhat - down.yhat)[:, 0] > 0).all()  # frame 0 rises with z (SLOPES[0] > 0)
    for refinement in (Refinement.paper(), Refinement(kernel="mala")):
        rising = model.forecast(
            context, 3, 50, refinement, seed=0, covariates=_future(z_context, [1.0] * 3)
        )
        falling = model.forecast(
            context, 3, 50, refinement, seed=0, covariates=_future(z_context, [-1.0] * 3)
        )
        assert torch.isfinite(rising.samples).all()
        gap = (rising.samples.mean(0) - falling.samples.mean(0)).mean((0, 1))
        assert gap[0] > 2.0 and gap[1] < -1.0, (refinement.kernel, gap)  # 2 * SLOPES = (4, -2)
        if refinement.kernel == "mala":
            assert torch.isfinite(rising.log_weights).all()


def test_the_online_forecaster_takes_the_covariates_of_each_new_frame(driven) -> None:
    model = driven["with"]
    windows, z = driven["test"][:2], driven["test_z"][:2]
    online = model.online(windows[:, :CONTEXT], 8, horizon=3, covariates=z[:, : CONTEXT + 3])
    expected = model.forecast(windows[:, :CONTEXT], 3, 8, seed=1, covariates=z[:, : CONTEXT + 3])
    torch.testing.assert_close(online.forecast(seed=1).samples, expected.samples, rtol=0, atol=0)
    for t in range(CONTEXT, CONTEXT + 3):
        online.push(windows[:, t], covariates_next=z[:, t + 3])
    # Three pushes = one encoder pass over the whole history and its covariates.
    with torch.no_grad():
        x = model.normalizer.normalize(windows[:, : CONTEXT + 3], online.loc)
        scaled = model.covariate_scaler.standardize(z)
        out, state = model._encode(x, None, covariates=scaled[:, : CONTEXT + 3])
    torch.testing.assert_close(online.state, state, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(online.ahead, scaled[:, CONTEXT + 3 : CONTEXT + 6])

    # A windowed forecaster forecasts exactly as forecast() on its newest frames.
    windowed = model.online(
        windows[:, :CONTEXT], 8, horizon=3, window=CONTEXT, covariates=z[:, : CONTEXT + 3]
    )
    for t in range(CONTEXT, CONTEXT + 2):
        windowed.push(windows[:, t], covariates_next=z[:, t + 3])
    start = 2
    recent, known = windows[:, start : start + CONTEXT], z[:, start : start + CONTEXT + 3]
    expected = model.forecast(recent, 3, 8, seed=3, covariates=known)
    torch.testing.assert_close(windowed.forecast(seed=3).samples, expected.samples)

    with pytest.raises(ValueError, match="push\\(frame, covariates_next=Tensor\\[B, 1\\]\\)"):
        online.push(windows[:, 7])
    with pytest.raises(ValueError, match=r"covariates_next must be Tensor\[B, K\]"):
        online.push(windows[:, 7], covariates_next=z[:, :2])
    with pytest.raises(ValueError, match="covariates_next given, but the model was built without"):
        driven["without"].online(windows[:, :CONTEXT]).push(windows[:, 4], covariates_next=z[:, 5])
