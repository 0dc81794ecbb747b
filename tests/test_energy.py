"""Energies: shapes, broadcasting, algebra, closed-form gradients and reference densities."""

import math

import pytest
import torch
from torch import distributions as dist

from snfseq import energy
from snfseq.energy import (
    Energy,
    Gaussian,
    GaussianMixture,
    Interpolated,
    Potential,
    PullBack,
    Scaled,
    SquaredDistance,
    StandardNormal,
    Sum,
    as_energy,
    paper_energy,
)

S, B, D = 7, 3, 4


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(S, B, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def _gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mixture() -> GaussianMixture:
    locs = torch.tensor([[-2.0, 0.0, 1.0, 0.5], [1.5, 1.0, -1.0, 0.0], [0.0, -2.0, 0.0, 2.0]])
    scales = torch.tensor([[0.5, 1.0, 0.7, 1.2], [1.0, 0.3, 0.8, 1.0], [0.6, 0.6, 2.0, 0.4]])
    return GaussianMixture(locs.double(), scales.double(), torch.tensor([0.2, 0.5, 0.3]).double())


def _closed_form_energies() -> dict[str, Energy]:
    loc = torch.randn(B, D, generator=_gen(2), dtype=torch.float64)
    scale = torch.rand(D, generator=_gen(3), dtype=torch.float64) + 0.5
    per_point = torch.rand(S, B, generator=_gen(4), dtype=torch.float64) + 0.1
    return {
        "standard_normal": StandardNormal(),
        "gaussian": Gaussian(loc, scale),
        "gaussian_normalized": Gaussian(loc, 0.7, normalized=True),
        "squared_distance": SquaredDistance(loc, weight=per_point),
        "mixture": _mixture(),
        "sum": StandardNormal() + Gaussian(loc, scale) + _mixture(),
        "scaled": per_point * Gaussian(loc, scale),
        "interpolated": Interpolated(StandardNormal(), SquaredDistance(loc), per_point),
        "paper": paper_energy(loc, 0.75),
        "nested": 0.5 * (paper_energy(loc, 0.25) + 2.0 * _mixture()),
    }


def test_gaussian_broadcasts_series_loc_over_samples(x):
    loc = torch.randn(B, D, dtype=torch.float64)
    scale = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    energy = Gaussian(loc, scale)(x)
    assert energy.shape == (S, B)
    expected = 0.5 * (((x - loc) / scale) ** 2).sum(-1)
    torch.testing.assert_close(energy, expected)


def test_normalized_gaussian_is_minus_log_density(x):
    loc = torch.randn(B, D, dtype=torch.float64)
    for scale in (0.3, torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)):
        reference = dist.Normal(loc, torch.as_tensor(scale, dtype=torch.float64))
        torch.testing.assert_close(
            Gaussian(loc, scale, normalized=True)(x), -reference.log_prob(x).sum(-1)
        )


def test_squared_distance_has_no_half_and_per_point_weight(x):
    loc = torch.randn(B, D, dtype=torch.float64)
    weight = torch.rand(S, B, dtype=torch.float64)
    torch.testing.assert_close(SquaredDistance(loc, weight)(x), weight * ((x - loc) ** 2).sum(-1))


def test_algebra(x):
    a, b = StandardNormal(), Gaussian(torch.ones(D, dtype=torch.float64), 2.0)
    c = torch.rand(S, B, dtype=torch.float64)
    torch.testing.assert_close((a + b)(x), a(x) + b(x))
    torch.testing.assert_close((3 * a)(x), 3 * a(x))
    torch.testing.assert_close((a * 0.5)(x), 0.5 * a(x))
    torch.testing.assert_close((c * a)(x), c * a(x))
    torch.testing.assert_close((a * c)(x), c * a(x))
    torch.testing.assert_close(sum([a, b, a])(x), 2 * a(x) + b(x))
    torch.testing.assert_close(Interpolated(a, b, c)(x), (1 - c) * a(x) + c * b(x))
    assert isinstance(c * a, Scaled)
    assert len(Sum(a + b, b + a).parts) == 4
    with pytest.raises(TypeError):
        a * b
    with pytest.raises(TypeError):
        a + 1.0


def test_paper_energy_matches_published_formula(x):
    yhat = torch.randn(B, D, dtype=torch.float64)
    for lam in (0.0, 0.25, 1.0):
        expected = (1 - lam) * 0.5 * (x**2).sum(-1) + lam * ((yhat - x) ** 2).sum(-1)
        torch.testing.assert_close(paper_energy(yhat, lam)(x), expected)


@pytest.mark.parametrize("name", list(_closed_form_energies()))
def test_closed_form_gradient_matches_autograd(name, x):
    energy = _closed_form_energies()[name]
    with torch.no_grad():
        value, grad = energy.value_and_grad(x)
        ref_value, ref_grad = Potential(energy.__call__).value_and_grad(x)
    assert not grad.requires_grad and not value.requires_grad
    assert value.dtype == grad.dtype == torch.float64
    torch.testing.assert_close(value, ref_value)
    torch.testing.assert_close(grad, ref_grad)
    torch.testing.assert_close(value, energy(x))


def test_mixture_is_minus_log_reference_density(x):
    mixture = _mixture()
    reference = dist.MixtureSameFamily(
        dist.Categorical(probs=mixture.weights),
        dist.Independent(dist.Normal(mixture.locs, mixture.scales), 1),
    )
    torch.testing.assert_close(mixture(x), -reference.log_prob(x))


@pytest.mark.parametrize("scales", [0.7, torch.tensor([0.5, 2.0])])
def test_mixture_scale_forms_and_default_weights(scales):
    locs = torch.tensor([[-1.0, 0.0, 2.0], [1.0, 1.0, 0.0]])
    points = torch.randn(10, 3)
    expanded = torch.as_tensor(scales).reshape(-1, 1).expand(2, 3)
    reference = dist.MixtureSameFamily(
        dist.Categorical(probs=torch.tensor([0.5, 0.5])),
        dist.Independent(dist.Normal(locs, expanded), 1),
    )
    torch.testing.assert_close(GaussianMixture(locs, scales)(points), -reference.log_prob(points))


def test_pullback_through_affine_map_is_closed_form():
    gen = _gen(5)
    matrix = torch.randn(D, D, generator=gen, dtype=torch.float64) + 3 * torch.eye(D)
    shift = torch.randn(D, generator=gen, dtype=torch.float64)
    loc = torch.randn(D, generator=gen, dtype=torch.float64)
    scale = torch.rand(D, generator=gen, dtype=torch.float64) + 0.5
    target = Gaussian(loc, scale, normalized=True)
    log_det = torch.linalg.slogdet(matrix).logabsdet

    def transform(y):
        return y @ matrix.T + shift, log_det.expand(y.shape[:-1])

    pulled = PullBack(target, transform)
    # y = A^{-1}(x - b) with x ~ N(loc, diag scale^2) is Gaussian: the closed form.
    inverse = torch.linalg.inv(matrix)
    reference = dist.MultivariateNormal(
        (loc - shift) @ inverse.T, inverse @ torch.diag(scale**2) @ inverse.T
    )
    y = torch.randn(S, B, D, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(pulled(y), -reference.log_prob(y))
    _, grad = pulled.value_and_grad(y)
    precision = torch.diag(scale**-2)
    expected_grad = (transform(y)[0] - loc) @ precision @ matrix
    torch.testing.assert_close(grad, expected_grad)


def test_float64_points_with_float32_parameters_give_float64():
    energy = Gaussian(torch.zeros(3), torch.ones(3)) + SquaredDistance(torch.ones(3))
    value, grad = energy.value_and_grad(torch.randn(5, 3, dtype=torch.float64))
    assert value.dtype == grad.dtype == torch.float64


def test_constant_potential_has_zero_gradient():
    value, grad = Potential(lambda x: torch.ones(x.shape[:-1])).value_and_grad(torch.randn(4, 2))
    torch.testing.assert_close(value, torch.ones(4))
    torch.testing.assert_close(grad, torch.zeros(4, 2))


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="one energy per point"):
        Potential(lambda x: x.sum())(torch.randn(4, 2))
    with pytest.raises(ValueError, match="full batch shape"):
        Gaussian(torch.zeros(3, 2)).value_and_grad(torch.randn(2))
    with pytest.raises(ValueError, match="locs"):
        GaussianMixture(torch.zeros(3))
    with pytest.raises(ValueError, match="scales"):
        GaussianMixture(torch.zeros(2, 3), torch.ones(3))
    with pytest.raises(ValueError, match="weights"):
        GaussianMixture(torch.zeros(2, 3), 1.0, torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="positive"):
        Gaussian(torch.zeros(2), -1.0)
    with pytest.raises(TypeError):
        as_energy(3.0)
    with pytest.raises(TypeError, match="lam"):
        Interpolated(StandardNormal(), StandardNormal(), "0.5")


def test_as_energy_wraps_callables_only():
    energy = StandardNormal()
    assert as_energy(energy) is energy
    wrapped = as_energy(lambda z: z.square().sum(-1))
    assert isinstance(wrapped, Potential)
    torch.testing.assert_close(wrapped(torch.ones(2, 3)), torch.full((2,), 3.0))


def test_mixture_energy_stays_finite_far_from_every_component():
    mixture = GaussianMixture(torch.tensor([[0.0], [1.0]]), 0.1)
    value, grad = mixture.value_and_grad(torch.tensor([[1e3], [-1e3]]))
    assert torch.isfinite(value).all() and torch.isfinite(grad).all()
    assert value[0] == pytest.approx(
        0.5 * (999.0 / 0.1) ** 2 + math.log(2 * 0.1) + 0.5 * math.log(2 * math.pi), rel=1e-6
    )


def _compositions():
    """Gaussian-type compositions in float64, each with per-row tensors where allowed."""
    torch.manual_seed(3)
    yhat = torch.randn(6, 4, dtype=torch.float64)
    lam = torch.rand(6, dtype=torch.float64)
    weight = torch.rand(6, dtype=torch.float64) + 0.5
    return {
        "paper": energy.Interpolated(energy.StandardNormal(), energy.SquaredDistance(yhat), 0.3),
        "gaussian target": energy.Interpolated(
            energy.StandardNormal(), energy.Gaussian(yhat, 0.7), 0.6
        ),
        "per-row lam": energy.Interpolated(
            energy.StandardNormal(), energy.SquaredDistance(yhat, weight), lam
        ),
        "normalised sum": 0.5 * energy.StandardNormal()
        + energy.Gaussian(yhat, 2.0, normalized=True)
        + energy.SquaredDistance(-yhat, 3.0),
        "ends": energy.Interpolated(energy.StandardNormal(), energy.SquaredDistance(yhat), 1.0),
    }


@pytest.mark.parametrize("name", list(_compositions()))
def test_a_collapsed_quadratic_equals_its_composition_with_its_constant(name):
    u = _compositions()[name]
    q = energy.simplified(u)
    assert isinstance(q, energy.Quadratic)
    x = 3 * torch.randn(6, 4, dtype=torch.float64)
    e, g = q.value_and_grad(x)
    e_ref, g_ref = u.value_and_grad(x)
    torch.testing.assert_close(e, e_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(q(x), u(x), rtol=1e-12, atol=1e-12)


def test_what_is_not_quadratic_is_left_as_it_is():
    mixture = energy.GaussianMixture(torch.zeros(2, 3), 1.0)
    per_coordinate = energy.Gaussian(torch.zeros(3), torch.tensor([1.0, 2.0, 3.0]))
    for u in (mixture, energy.StandardNormal() + mixture, per_coordinate):
        assert energy.simplified(u) is u
    with pytest.raises(ValueError, match="mean"):
        energy.Quadratic(1.0, 1.0)
