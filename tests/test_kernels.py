"""Kernels: invariance of exact targets, convergence, SNF path weights, Pyro's runner.

Every statistical check uses a fixed seed and a tolerance stated in Monte Carlo standard
errors (or as a KS distance well above the 0.1 % critical value).
"""

import math

import pyro
import pytest
import torch
from gaussian_targets import CorrelatedGaussian, correlated_gaussian
from scipy import stats

from snfseq.energy import Gaussian, GaussianMixture, Interpolated, Potential
from snfseq.kernels import HMC, MALA, FullTransition, RandomWalkMetropolis, Transition


def ar1_gaussian(dim=5, rho=0.9):
    """Unit-variance Gaussian with AR(1) correlations ``rho^|i - j|``."""
    lags = (torch.arange(dim)[:, None] - torch.arange(dim)[None, :]).abs()
    return CorrelatedGaussian(torch.zeros(dim), rho ** lags.float())


class Mixture2D:
    """Asymmetric two-mode 2-D Gaussian mixture with exact sampling and marginal CDFs."""

    weights = torch.tensor([0.3, 0.7])
    locs = torch.tensor([[-2.0, 0.0], [2.0, 1.0]])
    scales = torch.tensor([[0.6, 1.0], [1.0, 0.5]])

    def __init__(self) -> None:
        self.energy = GaussianMixture(self.locs, self.scales, self.weights)
        components = self.weights.unsqueeze(-1)
        self.mean = (components * self.locs).sum(0)
        second = (components * (self.locs**2 + self.scales**2)).sum(0)
        cross = (self.weights * self.locs[:, 0] * self.locs[:, 1]).sum()
        cov = torch.diag(second - self.mean**2)
        cov[0, 1] = cov[1, 0] = cross - self.mean[0] * self.mean[1]
        self.covariance = cov

    def sample(self, n: int) -> torch.Tensor:
        component = torch.multinomial(self.weights, n, replacement=True)
        return self.locs[component] + self.scales[component] * torch.randn(n, 2)

    def marginal_cdf(self, dim: int):
        def cdf(x):
            return sum(
                w.item() * stats.norm(m.item(), s.item()).cdf(x)
                for w, m, s in zip(self.weights, self.locs[:, dim], self.scales[:, dim])
            )

        return cdf


def run_chains(kernel, z, energy, num_steps, step_size=None):
    """Chains ``num_steps`` transitions, passing the cached energy and gradient along."""
    out = None
    for _ in range(num_steps):
        out = kernel.full_transition(
            z,
            energy,
            step_size=step_size,
            energy=None if out is None else out.energy,
            grad=None if out is None else out.grad,
        )
        z = out.z
    return z, out


def assert_matches_target(samples, mean, covariance, marginal_cdfs, *, ks_max):
    """Mean within 5 standard errors, covariance within 5 standard errors (entrywise),
    every marginal's KS distance below ``ks_max``."""
    n = samples.shape[0]
    sd = covariance.diagonal().sqrt()
    assert ((samples.mean(0) - mean).abs() < 5 * sd / math.sqrt(n)).all(), samples.mean(0)
    empirical = torch.cov(samples.T)
    # Var of a sample covariance entry: (S_ii S_jj + S_ij^2) / n for Gaussians; the mixture is
    # close enough to use the same scale with the 5-sigma margin.
    entry_se = ((sd[:, None] * sd[None, :]) ** 2 + covariance**2).sqrt() / math.sqrt(n)
    assert ((empirical - covariance).abs() < 5 * entry_se).all(), (empirical, covariance)
    for dim, cdf in enumerate(marginal_cdfs):
        ks = stats.kstest(samples[:, dim].numpy(), cdf).statistic
        assert ks < ks_max, (dim, ks)


INVARIANT_KERNELS = {
    "rwm": lambda: RandomWalkMetropolis(step_size=0.5),
    "mala": lambda: MALA(step_size=0.05),
    "hmc": lambda: HMC(step_size=0.2, num_steps=5),
    "hmc_jitter": lambda: HMC(step_size=0.2, num_steps=5, jitter=0.5),
}


@pytest.mark.parametrize("name", list(INVARIANT_KERNELS))
def test_correlated_gaussian_stays_invariant(name):
    torch.manual_seed(0)
    target = correlated_gaussian()
    kernel = INVARIANT_KERNELS[name]()
    num_chains = 20_000
    samples, out = run_chains(kernel, target.sample(num_chains), target, num_steps=60)
    acceptance = out.accepted.float().mean().item()
    assert 0.2 < acceptance < 0.98, acceptance  # the kernel really moves
    cdfs = [target.marginal_cdf(d) for d in range(5)]
    # KS critical value at the 0.1 % level is 1.95 / sqrt(n) = 0.0138.
    assert_matches_target(samples, target.mean, target.covariance, cdfs, ks_max=0.0138)


@pytest.mark.parametrize("name", list(INVARIANT_KERNELS))
def test_gaussian_mixture_stays_invariant(name):
    torch.manual_seed(1)
    target = Mixture2D()
    kernel = INVARIANT_KERNELS[name]()
    num_chains = 20_000
    samples, _ = run_chains(kernel, target.sample(num_chains), target.energy, num_steps=60)
    cdfs = [target.marginal_cdf(d) for d in range(2)]
    assert_matches_target(samples, target.mean, target.covariance, cdfs, ks_max=0.0138)
    # Local kernels rarely cross between modes, so mode masses test invariance directly.
    right_mode = (samples[:, 0] > 0).float().mean().item()
    assert abs(right_mode - 0.7) < 5 * math.sqrt(0.21 / num_chains)


def test_unadjusted_langevin_is_biased_so_the_invariance_check_has_power():
    torch.manual_seed(2)
    target = correlated_gaussian()
    samples, _ = run_chains(
        MALA(step_size=0.05, adjusted=False), target.sample(20_000), target, num_steps=60
    )
    variance_ratio = samples.var(0) / target.covariance.diagonal()
    assert variance_ratio.max() > 1.15, variance_ratio


def per_coordinate_rwm_step(z, energy, step_size):
    """The published GRU-SNF block: one uniform per coordinate against the scalar ratio."""
    proposal = z + step_size * torch.randn_like(z)
    log_ratio = (energy(z) - energy(proposal)).unsqueeze(-1)
    accept = torch.rand_like(z).log() < log_ratio
    return torch.where(accept, proposal, z)


def test_per_chain_accept_keeps_variances_where_per_coordinate_accept_inflates_them():
    torch.manual_seed(3)
    target = ar1_gaussian(rho=0.9)
    num_chains, num_steps, step = 30_000, 400, 1.0
    start = target.sample(num_chains)
    ours, _ = run_chains(RandomWalkMetropolis(step_size=step), start, target, num_steps)
    broken = start
    for _ in range(num_steps):
        broken = per_coordinate_rwm_step(broken, target, step)
    ours_ratio = ours.var(0) / target.covariance.diagonal()
    broken_ratio = broken.var(0) / target.covariance.diagonal()
    # 3 % is 3.7 standard errors of a variance ratio from 30,000 independent chains.
    assert ((ours_ratio - 1).abs() < 0.03).all(), ours_ratio
    assert (broken_ratio > 1.10).all(), broken_ratio


@pytest.mark.parametrize("name", list(INVARIANT_KERNELS))
def test_chains_converge_from_a_far_start(name):
    torch.manual_seed(4)
    # Moderately conditioned, so that even random-walk chains cross 16 sd within the run.
    target = correlated_gaussian(scales=(0.5, 1.0, 2.0, 1.0, 1.5), correlation=0.5)
    kernel = INVARIANT_KERNELS[name]()
    kernel.potential = target
    start = torch.full((2_000, 5), 8.0)
    mcmc = pyro.infer.mcmc.MCMC(
        kernel,
        num_samples=100,
        warmup_steps=400,
        initial_params={"z": start},
        disable_progbar=True,
    )
    mcmc.run()
    samples = mcmc.get_samples()["z"]  # [100, 2000, 5]
    sd = target.covariance.diagonal().sqrt()
    assert ((samples.mean((0, 1)) - target.mean).abs() < 0.1 * sd).all()
    variance_ratio = samples.reshape(-1, 5).var(0) / sd**2
    assert ((variance_ratio - 1).abs() < 0.1).all(), variance_ratio


ALL_KERNELS = {
    "rwm": lambda: RandomWalkMetropolis(step_size=0.5),
    "mala": lambda: MALA(step_size=0.1),
    "ula": lambda: MALA(step_size=0.1, adjusted=False),
    "hmc": lambda: HMC(step_size=0.2, num_steps=3),
    "uhmc": lambda: HMC(step_size=0.3, num_steps=3, adjusted=False, jitter=0.3),
}


@pytest.mark.parametrize("name", list(ALL_KERNELS))
def test_snf_path_weights_are_unbiased_importance_weights(name):
    """z ~ N(0, I), K annealed transitions towards a shifted, rescaled Gaussian target: the
    weighted moments match the target, E[w] = 1 for normalised end energies, the unweighted
    moments are biased."""
    torch.manual_seed(5)
    num_samples, num_blocks, dim = 20_000, 8, 2
    loc, scale = torch.tensor([1.0, -0.5]), torch.tensor([0.6, 0.9])
    prior = Gaussian(torch.zeros(dim), 1.0, normalized=True)
    target = Gaussian(loc, scale, normalized=True)
    kernel = ALL_KERNELS[name]()
    z = torch.randn(num_samples, dim)
    x, log_weight = z, prior(z)
    for block in range(1, num_blocks + 1):
        out = kernel.transition(x, Interpolated(prior, target, block / num_blocks))
        x, log_weight = out.z, log_weight + out.log_weight
    log_weight = log_weight - target(x)

    weights = torch.softmax(log_weight, 0)
    for f, exact in ((x, loc), (x**2, loc**2 + scale**2)):
        estimate = (weights[:, None] * f).sum(0)
        # Delta-method standard error of a self-normalised importance estimate.
        se = ((weights[:, None] ** 2) * (f - estimate) ** 2).sum(0).sqrt()
        assert ((estimate - exact).abs() < 5 * se).all(), (estimate, exact, se)
    unweighted_se = x.std(0) / math.sqrt(num_samples)
    assert ((x.mean(0) - loc).abs() > 5 * unweighted_se).any(), (x.mean(0), loc)
    # Both end energies normalised: the raw weights average to exactly one.
    raw = log_weight.exp()
    assert abs(raw.mean().item() - 1) < 5 * raw.std().item() / math.sqrt(num_samples)


def test_metropolis_log_weight_is_energy_difference():
    torch.manual_seed(6)
    energy = Gaussian(torch.ones(3), 0.5)
    z = torch.randn(100, 3)
    out = MALA(energy, step_size=0.1).transition(z)
    torch.testing.assert_close(out.log_weight, energy(out.z) - energy(z))
    torch.testing.assert_close(out.energy, energy(out.z))


def hard_wall(kind):
    """Standard normal on x_0 > 0.5; +inf, -inf, NaN, or NaN with a NaN gradient elsewhere."""

    def fn(x):
        inside = x[..., 0] > 0.5
        base = 0.5 * x.square().sum(-1)
        if kind in ("inf", "-inf"):
            return torch.where(inside, base, float(kind))
        if kind == "nan":
            return torch.where(inside, base, math.nan)
        return base + torch.sqrt(x[..., 0] - 0.5)

    return Potential(fn)


@pytest.mark.parametrize("kind", ["inf", "-inf", "nan", "sqrt"])
@pytest.mark.parametrize("name", list(ALL_KERNELS))
def test_non_finite_proposals_are_rejected_without_poisoning(name, kind):
    torch.manual_seed(7)
    kernel = ALL_KERNELS[name]()
    z = torch.full((500, 2), 1.0)
    energy = hard_wall(kind)
    total_log_weight = torch.zeros(500)
    rejected_any = torch.zeros(500, dtype=torch.bool)
    out = None
    for _ in range(30):
        out = kernel.full_transition(
            z,
            energy,
            energy=None if out is None else out.energy,
            grad=None if out is None else out.grad,
        )
        z = out.z
        total_log_weight = total_log_weight + out.log_weight
        rejected_any |= ~out.accepted
        assert (z[:, 0] > 0.5).all()
        assert torch.isfinite(z).all() and torch.isfinite(out.energy).all()
        assert not torch.isnan(out.log_weight).any()
    assert rejected_any.any()  # the wall was hit
    if getattr(kernel, "adjusted", True):
        assert torch.isfinite(total_log_weight).all()
    else:
        # An unadjusted path that hit the wall gets weight zero, the others keep theirs.
        assert torch.equal(torch.isinf(total_log_weight), rejected_any)


@pytest.mark.parametrize("name", list(ALL_KERNELS))
def test_pyro_mcmc_runner_drives_the_kernel(name):
    torch.manual_seed(8)
    kernel = ALL_KERNELS[name]()
    kernel.potential = Gaussian(torch.ones(3), 2.0)
    start = torch.zeros(64, 3)
    mcmc = pyro.infer.mcmc.MCMC(
        kernel,
        num_samples=30,
        warmup_steps=20,
        initial_params={"z": start},
        disable_progbar=True,
    )
    mcmc.run()
    assert mcmc.get_samples()["z"].shape == (30, 64, 3)
    assert mcmc.get_samples(group_by_chain=True)["z"].shape == (1, 30, 64, 3)
    diagnostics = kernel.diagnostics()
    assert diagnostics["acceptance rate"].shape == (64,)
    assert diagnostics["step size"].shape == (64,)
    assert diagnostics["num steps"] == 30
    assert "acceptance rate" in mcmc.diagnostics()
    assert set(kernel.logging()) == {"step size", "acc. rate", "acc. prob"}


def adapted_run(kernel, seed):
    torch.manual_seed(seed)
    kernel.potential = Gaussian(torch.zeros(10), torch.linspace(0.5, 2.0, 10))
    mcmc = pyro.infer.mcmc.MCMC(
        kernel,
        num_samples=100,
        warmup_steps=300,
        initial_params={"z": torch.randn(1_000, 10)},
        disable_progbar=True,
    )
    mcmc.run()
    return kernel.diagnostics()


@pytest.mark.parametrize("name", ["rwm", "mala", "hmc"])
def test_step_size_adaptation_reaches_target_acceptance(name):
    kernel = ALL_KERNELS[name]()
    diagnostics = adapted_run(kernel, seed=9)
    # Per-chain dual averaging ends somewhat off its target (as in Stan): the averaged
    # log-step differs from the oscillating iterates that met the target on average.
    assert abs(diagnostics["acceptance rate"].mean().item() - kernel.target_accept) < 0.12
    steps = diagnostics["step size"]
    assert steps.shape == (1_000,) and (steps > 0).all()
    assert steps.std() > 0  # each chain adapted its own step


@pytest.mark.parametrize("name", ["mala", "hmc"])
def test_unadjusted_kernels_adapt_like_their_adjusted_counterpart(name):
    adjusted = adapted_run(ALL_KERNELS[name](), seed=9)
    kernel = ALL_KERNELS[name]()
    kernel.adjusted = False
    unadjusted = adapted_run(kernel, seed=9)
    torch.testing.assert_close(unadjusted["step size"], adjusted["step size"])
    assert (unadjusted["acceptance rate"] == 1).all()
    assert (unadjusted["accept prob"] < 1).all()


def test_sample_reuses_cached_energy_only_for_the_returned_tensor():
    calls = []

    def fn(x):
        calls.append(1)
        return 0.5 * x.square().sum(-1)

    kernel = RandomWalkMetropolis(fn)
    state = {"z": torch.zeros(10, 2)}
    state = kernel.sample(state)
    assert len(calls) == 2  # current state and proposal
    state = kernel.sample(state)
    assert len(calls) == 3
    kernel.sample({"z": state["z"].clone()})
    assert len(calls) == 5


def test_per_chain_step_size_in_transition():
    torch.manual_seed(10)
    kernel = RandomWalkMetropolis(Gaussian(torch.zeros(2)))
    z = torch.zeros(4, 100, 2)
    step = torch.tensor([1e-6, 1e-6, 1.0, 1.0])[:, None]  # one step per chain row
    out = kernel.transition(z, step_size=step)
    moved = (out.z - z).abs().amax(-1)
    assert (moved[:2] < 1e-4).all() and (moved[2:] > 1e-3).any()
    with pytest.raises(ValueError, match="per-chain step size"):
        kernel.transition(z, step_size=torch.ones(3))


@pytest.mark.parametrize("name", list(ALL_KERNELS))
def test_transition_and_sample_never_read_tensor_values(name):
    """Meta tensors have shapes but no values: ``.item()``, ``bool(tensor)`` or
    ``nonzero`` raise on them, so this run proves that no step waits on the device."""
    meta = torch.device("meta")
    z = torch.empty(100, 60, device=meta)
    loc = torch.empty(60, device=meta)
    energies = [
        Interpolated(Gaussian(loc), GaussianMixture(torch.zeros(3, 60), 1.0), 0.5),
        Potential(lambda x: x.square().sum(-1)),
    ]
    kernel = ALL_KERNELS[name]()
    for energy in energies:
        out = kernel.full_transition(z, energy, step_size=torch.full((100,), 0.1, device=meta))
        kernel.transition(out.z, energy, energy=out.energy, grad=out.grad)
    kernel.potential = energies[0]
    kernel.initial_params = {"z": z}
    kernel.setup(warmup_steps=3)
    state = kernel.initial_params
    for _ in range(5):  # through warmup, its end, and sampling
        state = kernel.sample(state)
    assert state["z"].device == meta and kernel.diagnostics()["step size"].device == meta


@pytest.mark.parametrize("name", list(ALL_KERNELS))
def test_dtype_follows_state(name):
    kernel = ALL_KERNELS[name]()
    z = torch.randn(8, 3, dtype=torch.float64)
    out = kernel.transition(z, Gaussian(torch.ones(3), 2.0), step_size=torch.tensor(0.1))
    assert isinstance(out, Transition)
    assert out.z.dtype == out.energy.dtype == out.log_weight.dtype == torch.float64
    assert out.accepted.dtype == torch.bool and out.accepted.shape == (8,)
    full = kernel.full_transition(z, Gaussian(torch.ones(3), 2.0))
    assert isinstance(full, FullTransition) and full.log_accept_ratio.dtype == torch.float64


def test_errors_name_the_problem():
    kernel = RandomWalkMetropolis()
    with pytest.raises(ValueError, match="no potential"):
        kernel.transition(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="exactly one name"):
        kernel.initial_params = {"a": torch.zeros(2), "b": torch.zeros(2)}
    with pytest.raises(ValueError, match="one energy per"):
        kernel.transition(torch.zeros(3, 2), lambda x: x.sum(-1, keepdim=True))
    with pytest.raises(ValueError, match="step_size"):
        MALA(step_size=-1.0)
    with pytest.raises(ValueError, match="target_accept"):
        HMC(target_accept=1.5)
    with pytest.raises(ValueError, match="num_steps"):
        HMC(num_steps=0)
    with pytest.raises(ValueError, match="jitter"):
        HMC(jitter=1.0)
    kernel.potential = Gaussian(torch.zeros(2))
    mcmc = pyro.infer.mcmc.MCMC(
        kernel, num_samples=2, initial_params={"z": torch.zeros(3, 2)}, disable_progbar=True
    )
    with pytest.raises(TypeError, match="no model"):
        mcmc.run(torch.zeros(1))
