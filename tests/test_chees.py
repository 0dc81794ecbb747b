"""ChEES-HMC: invariance of the frozen kernel, cross-chain adaptation, Pyro's runner.

Statistical checks use a fixed seed and tolerances in Monte Carlo standard errors of
independent chains (the chains' states after a few transitions, one draw each).
"""

import math

import numpy as np
import pyro
import pytest
import torch
from arviz_stats.base import array_stats
from gaussian_targets import correlated_gaussian

from snfseq.energy import Gaussian, Potential
from snfseq.kernels import HMC, ChEESAdaptation, ChEESHMC
from snfseq.kernels.chees import chees_gradient, halton


def moment_errors(samples, mean, covariance):
    """Errors of the sample mean and covariance in standard errors of independent draws
    (``Var`` of a Gaussian sample covariance entry: ``(S_ii S_jj + S_ij^2) / n``)."""
    n = samples.shape[0]
    sd = covariance.diagonal().sqrt()
    mean_error = (samples.mean(0) - mean) / (sd / math.sqrt(n))
    entry_se = ((sd[:, None] * sd[None, :]) ** 2 + covariance**2).sqrt() / math.sqrt(n)
    covariance_error = (torch.cov(samples.T) - covariance) / entry_se
    return mean_error, covariance_error


def run_frozen(kernel, target, num_chains=4_000, num_steps=10):
    """Starts the chains exactly from the target and takes ``num_steps`` transitions."""
    state = {"z": target.sample(num_chains)}
    for _ in range(num_steps):
        state = kernel.sample(state)
    return state["z"]


TARGET_5D = dict(scales=[0.5, 1.0, 2.0, 1.0, 3.0], correlation=0.8)  # sd 0.24 to 3.7 along axes


@pytest.mark.parametrize(
    "target_args", [TARGET_5D, dict(scales=[0.3, 2.0], correlation=-0.6)], ids=["5d", "2d"]
)
def test_frozen_kernel_leaves_a_correlated_gaussian_invariant(target_args):
    torch.manual_seed(0)
    target = correlated_gaussian(**target_args)
    kernel = ChEESHMC(target, step_size=0.4, trajectory_length=4.0)  # no setup(): frozen
    samples = run_frozen(kernel, target)
    diagnostics = kernel.diagnostics()
    assert 0.5 < diagnostics["accept prob"].mean().item() < 0.95  # the chains really move
    # One Halton point per transition for all chains: ceil(u T / eps) of at most 10 steps.
    jittered = [math.ceil(halton(i) * 4.0 / 0.4) for i in range(10)]
    assert diagnostics["leapfrog steps"] == sum(jittered) and len(set(jittered)) > 5
    mean_error, covariance_error = moment_errors(samples, target.mean, target.covariance)
    assert (mean_error.abs() < 5).all(), mean_error
    assert (covariance_error.abs() < 5).all(), covariance_error


def test_the_invariance_check_catches_a_missing_metropolis_correction():
    torch.manual_seed(0)
    target = correlated_gaussian(**TARGET_5D)
    kernel = ChEESHMC(target, step_size=0.4, trajectory_length=4.0, adjusted=False)
    samples = run_frozen(kernel, target)
    _, covariance_error = moment_errors(samples, target.mean, target.covariance)
    assert covariance_error.abs().max() > 10, covariance_error


SCALES = torch.tensor([0.1, 0.3, 1.0, 3.0, 5.0])  # variances spanning a factor 2,500


def test_warmup_from_a_poor_start_finds_the_largest_scale_and_the_target_acceptance():
    torch.manual_seed(1)
    target = Gaussian(torch.zeros(5), SCALES)
    kernel = ChEESHMC(target, step_size=1e-3, trajectory_length=0.01)
    kernel.setup(warmup_steps=300)
    state = {"z": torch.zeros(1_000, 5)}
    for _ in range(300):
        state = kernel.sample(state)
    # The criterion is driven by the widest direction: a quarter period is 7.9 there.
    assert 5.0 / 2 < kernel.trajectory_length < 4 * 5.0, kernel.trajectory_length
    # Leapfrog is unstable beyond twice the narrowest scale.
    assert 0.02 < kernel.step_size < 0.2, kernel.step_size
    z, harmonic = state["z"], []
    for _ in range(20):  # frozen now
        out = kernel.transition(z)
        z = out.z
        accept_prob = out.log_accept_ratio.clamp(max=0).exp()
        harmonic.append(1 / (1 / accept_prob).mean().item())
    # Dual averaging meets the target on average over its oscillating iterates (measured
    # 0.651 over the last 100 warmup steps); the averaged step it ends with is more cautious,
    # as in Stan, since acceptance falls steeply with the step (measured 0.80).
    assert kernel.target_accept - 0.05 < np.mean(harmonic) < 0.9, harmonic
    mean_error, covariance_error = moment_errors(z, torch.zeros(5), torch.diag(SCALES**2))
    assert (mean_error.abs() < 5).all(), mean_error
    assert (covariance_error.diagonal().abs() < 5).all(), covariance_error


def min_ess_per_gradient(kernel, num_gradients):
    """Bulk ESS (arviz-stats) of 100 chains x 200 draws after 300 warmup steps: the minimum
    over coordinates of ``x`` and of ``x^2``, per gradient evaluation."""
    kernel.setup(warmup_steps=300)
    state = {"z": torch.randn(100, 5) * SCALES}
    for _ in range(300):
        state = kernel.sample(state)
    trace = []
    for _ in range(200):
        state = kernel.sample(state)
        trace.append(state["z"])
    draws = torch.stack(trace, -1).permute(1, 0, 2).numpy()  # [D, chain, draw]
    gradients = num_gradients(kernel) * 100
    return [
        float(np.min(array_stats.ess(f, chain_axis=-2, draw_axis=-1, method="bulk"))) / gradients
        for f in (draws, draws**2)
    ]


def test_chees_beats_fixed_five_step_hmc_in_ess_per_gradient():
    torch.manual_seed(2)
    target = Gaussian(torch.zeros(5), SCALES)
    chees = min_ess_per_gradient(
        ChEESHMC(target, step_size=1e-3, trajectory_length=0.01),
        lambda kernel: kernel.diagnostics()["leapfrog steps"],
    )
    # The same poor start; L = 5 with each chain's step adapted: too short for the wide axis.
    fixed = min_ess_per_gradient(HMC(target, step_size=1e-3, num_steps=5), lambda _: 5 * 200)
    # Measured 9x (x) and 3-4x (x^2) over seeds 0-3.
    assert chees[0] > 4 * fixed[0], (chees, fixed)
    assert chees[1] > 1.5 * fixed[1], (chees, fixed)


def test_pyro_mcmc_runner_adapts_then_samples_many_chains_in_one_tensor():
    torch.manual_seed(3)
    kernel = ChEESHMC(Gaussian(torch.ones(3), torch.tensor([0.5, 1.0, 2.0])), step_size=0.05)
    mcmc = pyro.infer.mcmc.MCMC(
        kernel,
        num_samples=30,
        warmup_steps=100,
        initial_params={"z": torch.zeros(200, 3)},
        disable_progbar=True,
    )
    mcmc.run()
    assert mcmc.get_samples()["z"].shape == (30, 200, 3)
    assert mcmc.get_samples(group_by_chain=True)["z"].shape == (1, 30, 200, 3)
    diagnostics = kernel.diagnostics()
    assert diagnostics["acceptance rate"].shape == (200,)
    assert diagnostics["num steps"] == 30
    assert isinstance(diagnostics["step size"], float) and diagnostics["step size"] != 0.05
    assert diagnostics["trajectory length"] > 1.0  # adapted up from the initial 1.0
    assert 30 <= diagnostics["leapfrog steps"] <= 30 * kernel.num_steps
    assert set(kernel.logging()) == {"step size", "acc. rate", "acc. prob", "traj. length"}
    # A new run starts again from the initial values and the first Halton point.
    kernel.setup(warmup_steps=0)
    assert kernel.step_size == 0.05 and kernel.trajectory_length == 1.0


def test_unadjusted_kernel_adapts_with_the_correction_then_takes_every_proposal():
    torch.manual_seed(4)
    kernel = ChEESHMC(Gaussian(torch.zeros(2)), adjusted=False)
    kernel.setup(warmup_steps=20)
    state = {"z": torch.randn(100, 2)}
    for _ in range(30):
        state = kernel.sample(state)
    diagnostics = kernel.diagnostics()
    assert (diagnostics["acceptance rate"] == 1).all()
    assert (diagnostics["accept prob"] < 1).any()


def test_chees_gradient_is_the_time_derivative_of_the_criterion():
    """Against autograd of the criterion ``mean_a[(|x' + t v - m'|^2 - |x - m|^2)^2] / 4``
    with the centring means held fixed (they stand in for the true mean)."""
    torch.manual_seed(5)
    initial, proposal, momentum = torch.randn(3, 50, 4).unbind(0)
    accept_prob = torch.rand(50)
    weights = accept_prob / accept_prob.sum()
    start_mean = initial.mean(0)
    end_mean = (weights[:, None] * proposal).sum(0)
    time = torch.zeros((), requires_grad=True)
    end = proposal + time * momentum
    change = (end - end_mean).square().sum(-1) - (initial - start_mean).square().sum(-1)
    criterion = (weights * change.square()).sum() / 4
    (expected,) = torch.autograd.grad(criterion, time)
    torch.testing.assert_close(chees_gradient(initial, proposal, momentum, accept_prob), expected)
    # A chain whose trajectory blew up counts for nothing.
    broken = proposal.clone()
    broken[0] = math.nan
    gradient = chees_gradient(
        initial, broken, momentum, torch.cat([torch.ones(1), accept_prob[1:]])
    )
    assert torch.isfinite(gradient)


def test_adaptation_keeps_the_trajectory_between_one_and_max_leapfrog_steps():
    adapt = ChEESAdaptation(0.65, max_leapfrog_steps=10)
    adapt.start(step_size=0.1, trajectory_length=0.5)
    for _ in range(100):
        step, length = adapt.update(accept_prob=None, gradient=1.0)
    assert step == 0.1 and length == pytest.approx(1.0)
    for _ in range(200):
        step, length = adapt.update(accept_prob=None, gradient=-1.0)
    assert length == pytest.approx(0.1)
    length_before = length
    step, length = adapt.update(accept_prob=None, gradient=math.nan)  # skipped
    assert length == length_before


def test_halton_points_are_distinct_and_fill_the_unit_interval():
    points = [halton(i) for i in range(1023)]
    assert sorted(points) == [k / 1024 for k in range(1, 1024)]


def test_transition_and_sampling_never_read_tensor_values():
    """Meta tensors have shapes but no values: only the warmup update reads the device."""
    meta = torch.device("meta")
    kernel = ChEESHMC(Potential(lambda x: x.square().sum(-1)), trajectory_length=0.5)
    z = torch.empty(100, 60, device=meta)
    out = kernel.transition(z)
    kernel.transition(out.z, energy=out.energy, grad=out.grad)
    kernel.setup(warmup_steps=0)
    state = {"z": z}
    for _ in range(3):
        state = kernel.sample(state)
    assert state["z"].device == meta and kernel.diagnostics()["accept prob"].device == meta


def test_errors_name_the_problem():
    with pytest.raises(TypeError, match="float"):
        ChEESHMC(step_size=torch.tensor(0.1))
    with pytest.raises(ValueError, match="trajectory_length"):
        ChEESHMC(trajectory_length=0.0)
    with pytest.raises(ValueError, match="max_leapfrog_steps"):
        ChEESHMC(max_leapfrog_steps=0)
    kernel = ChEESHMC(Gaussian(torch.zeros(2)))
    with pytest.raises(ValueError, match="float step size"):
        kernel.transition(torch.zeros(4, 2), step_size=torch.full((4,), 0.1))
    kernel.setup(warmup_steps=5)
    with pytest.raises(ValueError, match="at least 2"):
        kernel.sample({"z": torch.zeros(1, 2)})
