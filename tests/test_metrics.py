"""Tests for snfseq.metrics against independent references and exact identities.

References: scoringrules (energy, CRPS and variogram scores), properscoring (weighted CRPS),
dcor (energy distance), numpy (quantiles), the integral form of the CRPS, closed-form
Gaussian CRPS, and brute-force pair loops. Tolerances: 1e-10 relative in float64 (rounding
only), 1e-5 relative in float32, Monte Carlo tolerances where stated.
"""

import math

import dcor
import numpy as np
import properscoring as ps
import pytest
import scoringrules as sr
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from snfseq import metrics
from snfseq.metrics import _pairwise

F64 = torch.float64


def make(*shape: int, seed: int = 0, dtype: torch.dtype = F64, loc: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=dtype) + loc


def close(actual: torch.Tensor, expected, rtol: float = 1e-10, atol: float = 1e-12) -> None:
    np.testing.assert_allclose(actual.detach().numpy(), np.asarray(expected), rtol=rtol, atol=atol)


# Shapes used throughout: S samples, batch (2, 3), H = 4 time steps, D = 6 features.
S, BATCH, H, D = 11, (2, 3), 4, 6


@pytest.fixture
def forecast() -> tuple[torch.Tensor, torch.Tensor]:
    return make(S, *BATCH, H, D, seed=1, loc=0.3), make(*BATCH, H, D, seed=2)


@pytest.fixture
def positive_weights() -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    return torch.rand(S, *BATCH, generator=gen, dtype=F64) + 0.1


def as_ensemble(samples: torch.Tensor) -> np.ndarray:
    """``[S, *B, H, D] -> [*B, S, H * D]``, the layout scoringrules expects by default."""
    return np.moveaxis(samples.flatten(-2).numpy(), 0, -2)


# ----------------------------------------------------------------------------- energy score


@pytest.mark.parametrize("fair", [False, True])
@pytest.mark.parametrize("chunk_size", [None, 1, 4])
def test_energy_score_matches_scoringrules(forecast, fair, chunk_size):
    samples, obs = forecast
    expected = sr.es_ensemble(
        obs.flatten(-2).numpy(),
        as_ensemble(samples),
        estimator="fair" if fair else "nrg",
        backend="numpy",
    )
    actual = metrics.energy_score(samples, obs, fair=fair, chunk_size=chunk_size)
    assert actual.shape == BATCH
    close(actual, expected)


@pytest.mark.parametrize("fair", [False, True])
def test_weighted_energy_score_matches_scoringrules(forecast, positive_weights, fair):
    samples, obs = forecast
    expected = sr.es_ensemble(
        obs.flatten(-2).numpy(),
        as_ensemble(samples),
        ens_w=np.moveaxis(positive_weights.numpy(), 0, -1),
        estimator="fair" if fair else "nrg",
        backend="numpy",
    )
    close(metrics.energy_score(samples, obs, fair=fair, weights=positive_weights), expected)
    log_w = positive_weights.log() + 7.0  # log-weights are only defined up to a constant
    close(metrics.energy_score(samples, obs, fair=fair, log_weights=log_w), expected)


def test_energy_score_event_dims_and_distance_relation(forecast):
    samples, obs = forecast
    flat = metrics.energy_score(samples.flatten(-2), obs.flatten(-2), event_dims=1)
    close(metrics.energy_score(samples, obs), flat)
    # The energy distance to a point mass is twice the energy score.
    distance = metrics.energy_distance(samples, obs.unsqueeze(0), event_dims=2)
    close(distance, 2 * flat)


# ----------------------------------------------------------------------------- energy distance


@pytest.mark.parametrize("unbiased", [False, True])
def test_energy_distance_matches_dcor(unbiased):
    x, y = make(9, 3, 5, seed=4), make(13, 3, 5, seed=5, loc=0.5)
    stat = "u_statistic" if unbiased else "v_statistic"
    expected = [
        dcor.energy_distance(x[:, i].numpy(), y[:, i].numpy(), estimation_stat=stat)
        for i in range(3)
    ]
    for chunk_size in (None, 2, 5):
        actual = metrics.energy_distance(x, y, unbiased=unbiased, chunk_size=chunk_size)
        close(actual, expected)


def test_energy_distance_identities():
    x = make(20, 2, 4, 3, seed=6)
    close(metrics.energy_distance(x, x, event_dims=2), torch.zeros(2), atol=1e-12)
    y = make(15, 2, 4, 3, seed=7)
    close(metrics.energy_distance(x, y, event_dims=2), metrics.energy_distance(y, x, event_dims=2))


def test_weighted_energy_distance_equals_repetition():
    x, y = make(5, 2, 4, seed=8), make(6, 2, 4, seed=9)
    cx, cy = torch.tensor([1, 3, 2, 1, 4]), torch.tensor([2, 1, 1, 5, 1, 3])
    expected = metrics.energy_distance(x.repeat_interleave(cx, 0), y.repeat_interleave(cy, 0))
    actual = metrics.energy_distance(x, y, x_weights=cx, y_log_weights=cy.to(F64).log())
    close(actual, expected)


# ----------------------------------------------------------------------------- CRPS


def crps_by_integration(samples: np.ndarray, weights: np.ndarray, obs: float) -> float:
    """Exact ``int (F(z) - 1{obs <= z})**2 dz`` for the weighted empirical CDF ``F``."""
    weights = weights / weights.sum()
    points = np.concatenate([samples, [obs]])
    order = np.argsort(points, kind="stable")
    points = points[order]
    jumps = np.concatenate([weights, [0.0]])[order]
    step = np.concatenate([np.zeros(len(samples)), [1.0]])[order]
    cdf, heaviside, total = 0.0, 0.0, 0.0
    for k in range(len(points) - 1):
        cdf += jumps[k]
        heaviside += step[k]
        total += (cdf - heaviside) ** 2 * (points[k + 1] - points[k])
    return total


def test_crps_matches_integral_form(forecast, positive_weights):
    samples, obs = forecast
    actual = metrics.crps(samples, obs, weights=positive_weights)
    s, o, w = samples.numpy(), obs.numpy(), positive_weights.numpy()
    for index in [(0, 0, 0, 0), (1, 2, 3, 5), (0, 1, 2, 4)]:
        expected = crps_by_integration(s[(slice(None), *index)], w[:, index[0], index[1]], o[index])
        close(actual[index], expected)


@pytest.mark.parametrize("fair", [False, True])
def test_crps_matches_scoringrules(forecast, fair):
    samples, obs = forecast
    estimators = ["fair", "pwm"] if fair else ["nrg"]
    actual = metrics.crps(samples, obs, fair=fair)
    assert actual.shape == samples.shape[1:]
    for estimator in estimators:
        expected = sr.crps_ensemble(
            obs.numpy(), samples.numpy(), m_axis=0, estimator=estimator, backend="numpy"
        )
        close(actual, expected)


def test_weighted_crps_matches_properscoring_and_scoringrules(forecast, positive_weights):
    samples, obs = forecast
    w = positive_weights[..., None, None].expand(samples.shape)
    expected = ps.crps_ensemble(
        obs.numpy(), np.moveaxis(samples.numpy(), 0, -1), np.moveaxis(w.numpy(), 0, -1)
    )
    close(metrics.crps(samples, obs, weights=positive_weights), expected)
    fair_expected = sr.crps_ensemble(
        obs.numpy(),
        np.moveaxis(samples.numpy(), 0, -1),
        ens_w=np.moveaxis(w.numpy(), 0, -1),
        estimator="fair",
        backend="numpy",
    )
    close(metrics.crps(samples, obs, fair=True, weights=positive_weights), fair_expected)


def test_crps_reductions(forecast):
    samples, obs = forecast
    full = metrics.crps(samples, obs)
    close(metrics.crps(samples, obs, reduce="sum"), full.sum((-2, -1)))
    close(metrics.crps(samples, obs, reduce="mean"), full.mean((-2, -1)))
    assert metrics.crps(samples, obs, reduce="mean", event_dims=3).shape == BATCH[:1]


def test_crps_of_large_gaussian_ensemble_matches_closed_form():
    # CRPS(N(0, 1), y) = y (2 Phi(y) - 1) + 2 phi(y) - 1/sqrt(pi); the fair estimator is
    # unbiased, so with 20,000 samples the error is ~ sd / sqrt(S) ~ 0.005.
    gen = torch.Generator().manual_seed(10)
    obs = torch.tensor([-1.5, 0.0, 0.7, 2.0], dtype=F64).reshape(4, 1, 1)
    samples = torch.randn(20_000, 1, 1, 1, generator=gen, dtype=F64).expand(-1, 4, 1, 1)
    expected = sr.crps_normal(obs.numpy(), 0.0, 1.0)
    close(metrics.crps(samples, obs, fair=True), expected, rtol=0, atol=0.02)


# ----------------------------------------------------------------------------- variogram


@pytest.mark.parametrize("fair", [False, True])
@pytest.mark.parametrize("p", [0.5, 1.0])
def test_variogram_score_matches_scoringrules(forecast, positive_weights, fair, p):
    samples, obs = forecast
    features = H * D
    pair = make(features, features, seed=11).abs()
    estimator = "fair" if fair else "nrg"
    kwargs = dict(w=pair.numpy(), p=p, estimator=estimator, backend="numpy")
    expected = sr.vs_ensemble(obs.flatten(-2).numpy(), as_ensemble(samples), **kwargs)
    for chunk_size in (None, 3):
        actual = metrics.variogram_score(
            samples, obs, p=p, pair_weights=pair, fair=fair, chunk_size=chunk_size
        )
        close(actual, expected)
    expected_w = sr.vs_ensemble(
        obs.flatten(-2).numpy(),
        as_ensemble(samples),
        ens_w=np.moveaxis(positive_weights.numpy(), 0, -1),
        **kwargs,
    )
    actual_w = metrics.variogram_score(
        samples, obs, p=p, pair_weights=pair, fair=fair, weights=positive_weights
    )
    close(actual_w, expected_w)


# ----------------------------------------------------------------------------- APD


def test_apd_matches_brute_force(forecast, positive_weights):
    samples, _ = forecast
    x = samples.flatten(-2)  # [S, *B, F]
    diff = x.unsqueeze(0) - x.unsqueeze(1)  # [S, S, *B, F]
    off = ~torch.eye(S, dtype=torch.bool).reshape(S, S, 1, 1)
    l2, l1 = diff.norm(dim=-1), diff.abs().mean(-1)
    close(metrics.apd(samples), (l2 * off).sum((0, 1)) / (S * (S - 1)))
    close(metrics.apd(samples, p=1), (l1 * off).sum((0, 1)) / (S * (S - 1)))
    w = positive_weights / positive_weights.sum(0)
    pair = w.unsqueeze(0) * w.unsqueeze(1) * off
    denom = 1 - w.square().sum(0)
    for p, dist in ((2, l2), (1, l1)):
        expected = (pair * dist).sum((0, 1)) / denom
        close(metrics.apd(samples, p=p, weights=positive_weights, chunk_size=3), expected)


# ----------------------------------------------------------------------------- trajectories


def test_displacement_errors_match_loops(forecast, positive_weights):
    samples, obs = forecast
    coords = 3
    err = np.zeros((S, *BATCH, H, D // coords))
    s, o = samples.numpy(), obs.numpy()
    for k in range(D // coords):
        part = slice(k * coords, (k + 1) * coords)
        err[..., k] = np.sqrt(((s[..., part] - o[..., part]) ** 2).sum(-1))
    ade_s, fde_s = err.mean((-2, -1)), err[..., -1, :].mean(-1)
    w = (positive_weights / positive_weights.sum(0)).numpy()
    close(metrics.ade(samples, obs, coords=coords), ade_s.mean(0))
    close(metrics.fde(samples, obs, coords=coords), fde_s.mean(0))
    close(metrics.ade(samples, obs, coords=coords, weights=positive_weights), (w * ade_s).sum(0))
    close(metrics.fde(samples, obs, coords=coords, weights=positive_weights), (w * fde_s).sum(0))
    close(metrics.min_ade(samples, obs, coords=coords), ade_s.min(0))
    close(metrics.min_fde(samples, obs, coords=coords), fde_s.min(0))
    # Zero-weight samples are excluded from the best-of-S choice.
    zero = positive_weights.clone()
    best = torch.from_numpy(ade_s.argmin(0))
    zero.scatter_(0, best.unsqueeze(0), 0.0)
    masked = np.where(zero.numpy() > 0, ade_s, np.inf).min(0)
    close(metrics.min_ade(samples, obs, coords=coords, weights=zero), masked)
    assert bool(
        (metrics.min_ade(samples, obs, coords=coords, weights=zero).numpy() > ade_s.min(0)).all()
    )


# ----------------------------------------------------------------------------- point errors


def test_mae_and_mse(forecast, positive_weights):
    samples, obs = forecast
    s, o = samples.numpy(), obs.numpy()
    close(metrics.mae(samples, obs), np.abs(np.median(s, 0) - o).mean((-2, -1)))
    close(metrics.mse(samples, obs), ((s.mean(0) - o) ** 2).mean((-2, -1)))
    close(metrics.mae(samples, obs, point="samples"), np.abs(s - o).mean((0, -2, -1)))
    close(metrics.mse(samples, obs, point="median", reduce=None), (np.median(s, 0) - o) ** 2)
    per_sample = np.abs(s - o).mean((-2, -1))
    best = np.sort(per_sample, 0)[:4].mean(0)
    close(metrics.mae(samples, obs, point="samples", best=4), best)
    w = (positive_weights / positive_weights.sum(0)).numpy()[..., None, None]
    close(
        metrics.mse(samples, obs, weights=positive_weights),
        (((w * s).sum(0) - o) ** 2).mean((-2, -1)),
    )


# ----------------------------------------------------------------------------- quantiles, coverage


def test_quantile_matches_numpy():
    x = make(40, 3, 5, seed=12)
    levels = [0.0, 0.013, 0.25, 0.5, 0.6, 0.975, 1.0]  # including exact CDF steps (0.25, 0.5)
    expected = np.quantile(x.numpy(), levels, axis=0, method="averaged_inverted_cdf")
    close(metrics.quantile(x, levels), expected)
    gen = torch.Generator().manual_seed(13)
    w = torch.rand(40, 3, generator=gen, dtype=F64)
    for i in range(3):
        # numpy weights only the plain inverse CDF; random weights make ties with q unlikely.
        expected = np.quantile(
            x[:, i].numpy(), [0.1, 0.5, 0.9], axis=0, weights=w[:, i].numpy(), method="inverted_cdf"
        )
        close(metrics.quantile(x, [0.1, 0.5, 0.9], weights=w)[:, i], expected)
    assert metrics.quantile(x, 0.5).shape == (3, 5)


def test_coverage_of_calibrated_forecast():
    gen = torch.Generator().manual_seed(14)
    samples = torch.randn(200, 50, 20, 2, generator=gen)
    obs = torch.randn(50, 20, 2, generator=gen)
    cover = metrics.coverage(samples, obs, [0.5, 0.9])
    assert cover.shape == (2, 50)
    # 2,000 outcomes per level: Monte Carlo sd of the mean <= 0.011.
    close(cover.mean(1), [0.5, 0.9], rtol=0, atol=0.04)
    per_entry = metrics.coverage(samples, obs, 0.9, reduce=None)
    lo, hi = metrics.quantile(samples, [0.05, 0.95])
    assert torch.equal(per_entry.bool(), (lo <= obs) & (obs <= hi))


# ----------------------------------------------------------------------------- weights


def repetition_cases():
    coords_last = dict(coords=3)
    return [
        ("energy_score", lambda s, o, **kw: metrics.energy_score(s, o, chunk_size=3, **kw)),
        ("crps", lambda s, o, **kw: metrics.crps(s, o, **kw)),
        ("variogram", lambda s, o, **kw: metrics.variogram_score(s, o, **kw)),
        ("ade", lambda s, o, **kw: metrics.ade(s, o, **coords_last, **kw)),
        ("fde", lambda s, o, **kw: metrics.fde(s, o, **coords_last, **kw)),
        ("min_ade", lambda s, o, **kw: metrics.min_ade(s, o, **coords_last, **kw)),
        ("mae", lambda s, o, **kw: metrics.mae(s, o, **kw)),
        ("mae_samples", lambda s, o, **kw: metrics.mae(s, o, point="samples", **kw)),
        ("mse", lambda s, o, **kw: metrics.mse(s, o, **kw)),
        ("quantile", lambda s, o, **kw: metrics.quantile(s, [0.1, 0.5, 0.8], **kw)),
        ("coverage", lambda s, o, **kw: metrics.coverage(s, o, [0.5, 0.8], **kw)),
    ]


@pytest.mark.parametrize("name,metric", repetition_cases(), ids=[c[0] for c in repetition_cases()])
def test_integer_weights_equal_repetition(forecast, name, metric):
    samples, obs = forecast
    counts = torch.tensor([1, 3, 2, 1, 1, 4, 2, 1, 3, 1, 2])
    expected = metric(samples.repeat_interleave(counts, 0), obs)
    close(metric(samples, obs, weights=counts), expected)
    # weights and log_weights multiply; zero weights drop samples entirely.
    half = counts.to(F64) / 2
    close(metric(samples, obs, weights=half, log_weights=torch.full((S,), math.log(2.0))), expected)
    dropped = torch.cat([counts, torch.zeros(3, dtype=counts.dtype)])
    padded = torch.cat([samples, 50.0 + samples[:3]])
    close(metric(padded, obs, weights=dropped), expected)


def test_fair_estimators_use_distinct_pair_mass(forecast):
    samples, obs = forecast
    # Equal weights reproduce the unweighted fair estimators exactly.
    ones = torch.ones(S, *BATCH, dtype=F64)
    for metric in (metrics.energy_score, metrics.crps):
        close(metric(samples, obs, fair=True, weights=ones), metric(samples, obs, fair=True))
    close(metrics.apd(samples, weights=3 * ones), metrics.apd(samples))


# ----------------------------------------------------------------------------- numerics, memory


def test_float32_accuracy_far_from_origin_and_with_duplicates():
    # Keypoints near 100 with spread 0.05 and duplicated samples (rejected MCMC moves):
    # without centring the |a|^2 + |b|^2 - 2ab form would lose three digits here.
    samples = make(64, 3, 8, 10, seed=15, loc=0.0) * 0.05 + 100.0
    samples[32:48] = samples[:16]
    obs = make(3, 8, 10, seed=16) * 0.05 + 100.0
    for metric in (
        lambda s, o: metrics.energy_score(s, o),
        lambda s, o: metrics.energy_score(s, o, fair=True),
        lambda s, o: metrics.energy_distance(s, o.unsqueeze(0).expand(5, -1, -1, -1), event_dims=2),
        lambda s, o: metrics.apd(s),
        lambda s, o: metrics.crps(s, o, reduce="sum"),
    ):
        exact = metric(samples, obs)
        single = metric(samples.float(), obs.float())
        assert single.dtype == torch.float32
        close(single.double(), exact, rtol=1e-5, atol=0)


def test_results_do_not_depend_on_blocking(forecast, monkeypatch):
    samples, obs = forecast
    samples = torch.cat([samples, samples[:4]])  # duplicates exercise the refinement path
    calls = {
        "energy_score": lambda: metrics.energy_score(samples, obs, fair=True),
        "energy_distance": lambda: metrics.energy_distance(samples, samples[3:9], event_dims=2),
        "apd": lambda: metrics.apd(samples),
        "variogram": lambda: metrics.variogram_score(samples, obs, fair=True),
    }
    expected = {name: call() for name, call in calls.items()}
    # A tiny budget forces one series per slice, one row per block, refinement in pieces.
    monkeypatch.setattr(_pairwise, "_BLOCK_BUDGET", 50)
    for name, call in calls.items():
        close(call(), expected[name])


@pytest.mark.parametrize("fair", [False, True])
def test_one_dimensional_energy_score_is_crps(fair):
    # In one dimension nearly all pairs need the refined distance; float32 must still agree.
    samples, obs = make(300, 7, seed=25, loc=5.0), make(7, seed=26, loc=5.0)
    crps = metrics.crps(samples, obs, fair=fair, event_dims=0)
    close(metrics.energy_score(samples, obs, fair=fair, event_dims=0), crps)
    single = metrics.energy_score(samples.float(), obs.float(), fair=fair, event_dims=0)
    close(single.double(), crps, rtol=1e-5, atol=0)


class LargestTensor(TorchDispatchMode):
    """Records the largest number of elements any op produces."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(value, torch.Tensor):
                self.largest = max(self.largest, value.numel())
        return out


def test_pairwise_memory_is_linear_in_features():
    size, features = 300, 200
    samples = make(size, 2, 10, 20, seed=17, dtype=torch.float32)
    obs = make(2, 10, 20, seed=18, dtype=torch.float32)
    for call in (
        lambda: metrics.energy_score(samples, obs, chunk_size=50),
        lambda: metrics.energy_distance(samples, samples[:100], event_dims=2, chunk_size=50),
        lambda: metrics.apd(samples, chunk_size=50),
    ):
        with LargestTensor() as mode:
            call()
        # Inputs are 2 * S * F elements; a dense S x S x F difference would be 150x more.
        assert mode.largest <= 2 * size * features


# ----------------------------------------------------------------------------- dtype, device, grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtype_and_device_are_preserved(dtype):
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        samples = make(8, 2, 3, 4, seed=19).to(device=device, dtype=dtype)
        obs = make(2, 3, 4, seed=20).to(device=device, dtype=dtype)
        log_w = make(8, 2, seed=21).to(device=device, dtype=dtype)
        outputs = {
            "energy_score": metrics.energy_score(samples, obs, log_weights=log_w),
            "energy_distance": metrics.energy_distance(samples, samples + 1, event_dims=2),
            "crps": metrics.crps(samples, obs, log_weights=log_w),
            "variogram_score": metrics.variogram_score(samples, obs),
            "apd": metrics.apd(samples, log_weights=log_w),
            "ade": metrics.ade(samples, obs),
            "min_fde": metrics.min_fde(samples, obs, log_weights=log_w),
            "mae": metrics.mae(samples, obs, log_weights=log_w),
            "mse": metrics.mse(samples, obs),
            "coverage": metrics.coverage(samples, obs, [0.5, 0.9], log_weights=log_w),
            "quantile": metrics.quantile(samples, 0.3, log_weights=log_w),
        }
        expected_shapes = {"crps": (2, 3, 4), "coverage": (2, 2), "quantile": (2, 3, 4)}
        for name, value in outputs.items():
            assert value.dtype == dtype, name
            assert value.device.type == device, name
            assert value.shape == expected_shapes.get(name, (2,)), name


def test_energy_metrics_are_differentiable():
    samples = make(6, 2, 3, seed=22).requires_grad_()
    obs = make(2, 3, seed=23)
    log_w = make(6, 2, seed=24).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda s, lw: metrics.energy_score(s, obs, event_dims=1, log_weights=lw, chunk_size=4),
        (samples, log_w),
    )
    assert torch.autograd.gradcheck(
        lambda s: metrics.crps(s, obs, fair=True, event_dims=1), (samples,)
    )
    # Duplicated samples have zero distance; their gradient must stay finite.
    dup = torch.cat([samples.detach(), samples.detach()[:2]]).requires_grad_()
    metrics.energy_score(dup, obs, event_dims=1).sum().backward()
    assert dup.grad is not None and bool(torch.isfinite(dup.grad).all())


# ----------------------------------------------------------------------------- bad input


def test_bad_input_raises_clear_errors(forecast):
    samples, obs = forecast
    nan = samples.clone()
    nan[0, 0, 0, 0, 0] = float("nan")
    cases = [
        (lambda: metrics.energy_score(nan, obs), ValueError, "samples contains NaN"),
        (lambda: metrics.crps(samples, obs[..., :-1]), ValueError, "obs must have shape"),
        (lambda: metrics.energy_score(samples[:1], obs, fair=True), ValueError, "at least 2"),
        (lambda: metrics.apd(samples[:1]), ValueError, "at least 2"),
        (
            lambda: metrics.energy_distance(samples[:1], samples, unbiased=True),
            ValueError,
            "N >= 2",
        ),
        (lambda: metrics.energy_distance(samples, obs), ValueError, "must agree"),
        (lambda: metrics.crps(samples, obs, weights=-torch.ones(S)), ValueError, "non-negative"),
        (lambda: metrics.crps(samples, obs, weights=torch.zeros(S)), ValueError, "sum to zero"),
        (lambda: metrics.crps(samples, obs, weights=torch.ones(S, 5)), ValueError, "broadcast"),
        (lambda: metrics.crps(samples, obs, weights=torch.ones(S + 1)), ValueError, "shape"),
        (
            lambda: metrics.crps(samples, obs, log_weights=torch.full((S,), float("nan"))),
            ValueError,
            "NaN",
        ),
        (
            lambda: metrics.crps(samples, obs, fair=True, weights=torch.eye(S)[0]),
            ValueError,
            "two samples with positive weight",
        ),
        (lambda: metrics.crps(samples, obs, reduce="max"), ValueError, "reduce"),
        (lambda: metrics.ade(samples, obs, coords=4), ValueError, "multiple of coords"),
        (lambda: metrics.apd(samples, p=3), ValueError, "p must be 1 or 2"),
        (lambda: metrics.quantile(samples, 1.5), ValueError, r"\[0, 1\]"),
        (lambda: metrics.mae(samples, obs, best=3), ValueError, "point='samples'"),
        (lambda: metrics.mae(samples, obs, point="samples", best=S + 1), ValueError, "best"),
        (lambda: metrics.energy_score(samples.numpy(), obs), TypeError, "torch.Tensor"),
        (lambda: metrics.energy_score(samples > 0, obs), TypeError, "real-valued"),
        (lambda: metrics.energy_score(samples, obs, chunk_size=0), ValueError, "chunk_size"),
        (lambda: metrics.crps(samples[:, 0, 0, 0, 0], obs[0, 0, 0, 0]), ValueError, "event dims"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()
