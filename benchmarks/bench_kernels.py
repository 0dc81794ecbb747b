"""Throughput and sampling efficiency of snfseq's vectorized kernels against Pyro and BlackJAX.

Measures, on a 60-D correlated Gaussian (fixed random SPD precision, standard deviations
0.5 to 2 along random directions):

* chain-steps per second of RandomWalkMetropolis, MALA and HMC (L = 10, with and without
  step jitter) with 10,000 chains;
* bulk effective samples per second (arviz-stats ``ess``, min over four coordinates) of
  those runs and of Pyro's own ``HMC`` (L = 10) and ``NUTS`` on one chain;
* the cost of one transition at the paper's SNF block shape (100 samples x D = 60) under the
  published energy, the per-block cost the refinement loop pays;
* BlackJAX (``blackjax_peer.py``: JAX on CPU, ``jit`` + ``vmap``) against snfseq's RWM, MALA
  and HMC on the same Gaussian and on Neal's funnel (D = 10): each BlackJAX run starts where
  snfseq's run started sampling, with the step size snfseq adapted for each chain, for as many
  steps; chain-steps/s, ESS/s, acceptance and JAX's compile time, side by side. The end states
  of all chains are checked against the Gaussian's exact means and standard deviations, for
  both libraries, so that a wrongly wired kernel shows. Skipped (with a line in the report)
  when jax or blackjax is not importable.

Usage: ``python benchmarks/bench_kernels.py [--quick] [--threads N] [--device cpu|cuda]``
(``--threads`` defaults to 2, for torch and JAX alike). Writes ``results/kernels.json`` and
``.md`` (``kernels_quick`` with ``--quick``; ``--out`` another folder).
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import blackjax_peer
import numpy as np
import pyro
import torch
from blackjax_peer import KERNELS, Peer, Reference, Sampled, measure, min_ess, summarize
from machine import arguments, cpu_name, log, write_report
from pyro.infer.mcmc import HMC as PyroHMC
from pyro.infer.mcmc import MCMC, NUTS
from torch import Tensor

from snfseq.energy import Energy, paper_energy
from snfseq.kernels import HMC, MALA, Kernel, RandomWalkMetropolis


class CorrelatedGaussian(Energy):
    """``0.5 (x - mean)^T P (x - mean)`` with a closed-form gradient."""

    moments_checked = True

    def __init__(self, dim: int, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        rotation, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
        self.scales = torch.logspace(math.log10(0.5), math.log10(2.0), dim, dtype=torch.float64)
        self.rotation = rotation
        self.precision = (rotation / self.scales**2) @ rotation.T
        self.mean = torch.randn(dim, generator=gen, dtype=torch.float64)
        self._cast: dict[tuple[torch.dtype, torch.device], tuple[Tensor, Tensor]] = {}

    def _params(self, x: Tensor) -> tuple[Tensor, Tensor]:
        key = (x.dtype, x.device)
        if key not in self._cast:
            self._cast[key] = (self.mean.to(x), self.precision.to(x))
        return self._cast[key]

    def __call__(self, x: Tensor) -> Tensor:
        mean, precision = self._params(x)
        diff = x - mean
        return 0.5 * ((diff @ precision) * diff).sum(-1)

    def _value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, precision = self._params(x)
        diff = x - mean
        grad = diff @ precision
        return 0.5 * (grad * diff).sum(-1), grad

    def sample(self, n: int, gen: torch.Generator) -> Tensor:
        noise = torch.randn(n, self.mean.shape[0], generator=gen, dtype=torch.float64)
        return self.mean + (noise * self.scales) @ self.rotation.T

    def test_directions(self) -> Tensor:
        """Four unit vectors: the slowest and fastest principal directions, two coordinates."""
        eye = torch.eye(self.mean.shape[0], dtype=torch.float64)
        return torch.stack([self.rotation[:, -1], self.rotation[:, 0], eye[0], eye[1]], dim=1)

    def marginals(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact mean and standard deviation of every coordinate, ``([D], [D])``."""
        variance = (self.rotation**2 * self.scales**2).sum(-1)
        return self.mean.numpy(), variance.sqrt().numpy()

    def name(self) -> str:
        return f"Gaussian D = {self.mean.shape[0]}"

    def directions(self) -> np.ndarray:
        return self.test_directions().numpy()

    def jax_logdensity(self, peer: Peer) -> Callable[[Any], Any]:
        return blackjax_peer.gaussian(peer, self.mean.numpy(), self.precision.numpy())


class NealFunnel(Energy):
    """Neal's funnel over ``[v, x_1..x_{D-1}]``: ``v ~ N(0, 3^2)``, ``x_i | v ~ N(0, e^v)``,
    ``u = v^2 / 18 + (D - 1) v / 2 + e^{-v} |x|^2 / 2``, with a closed-form gradient."""

    scale = 3.0
    # Its x have heavy tails (kurtosis ~ e^9): their sample sd checks nothing.
    moments_checked = False

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def _parts(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(v, x, e^{-v}, e^{-v} |x|^2 / 2)``."""
        v, rest = x[..., 0], x[..., 1:]
        precision = (-v).exp()
        return v, rest, precision, 0.5 * precision * rest.square().sum(-1)

    def __call__(self, x: Tensor) -> Tensor:
        v, rest, _, half_square = self._parts(x)
        return 0.5 * (v / self.scale) ** 2 + 0.5 * rest.shape[-1] * v + half_square

    def _value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        v, rest, precision, half_square = self._parts(x)
        energy = 0.5 * (v / self.scale) ** 2 + 0.5 * rest.shape[-1] * v + half_square
        grad_v = v / self.scale**2 + 0.5 * rest.shape[-1] - half_square
        return energy, torch.cat([grad_v.unsqueeze(-1), precision.unsqueeze(-1) * rest], -1)

    def sample(self, n: int, gen: torch.Generator) -> Tensor:
        noise = torch.randn(n, self.dim, generator=gen, dtype=torch.float64)
        v = self.scale * noise[:, :1]
        return torch.cat([v, (0.5 * v).exp() * noise[:, 1:]], dim=-1)

    def test_directions(self) -> Tensor:
        """The neck ``v`` and the first three ``x``."""
        return torch.eye(self.dim, dtype=torch.float64)[:, :4]

    def marginals(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact means (0) and standard deviations (3, and ``e^{9/4}`` for every ``x``)."""
        sd = np.full(self.dim, math.exp(self.scale**2 / 4))
        sd[0] = self.scale
        return np.zeros(self.dim), sd

    def name(self) -> str:
        return f"funnel D = {self.dim}"

    def directions(self) -> np.ndarray:
        return self.test_directions().numpy()

    def jax_logdensity(self, peer: Peer) -> Callable[[Any], Any]:
        return blackjax_peer.funnel(peer, self.scale)


Target = CorrelatedGaussian | NealFunnel


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Sizes(NamedTuple):
    chains: int
    ess_chains: int  # K, the chains whose trace gives the ESS
    warmup: int


def bench_snfseq(
    name: str,
    kernel: Kernel,
    target: Target,
    sizes: Sizes,
    num_steps: int,
    device: torch.device,
    grads_per_step: int,
) -> Reference:
    gen = torch.Generator().manual_seed(1)
    z = target.sample(sizes.chains, gen).to(device=device, dtype=torch.float32)
    kernel.potential = target
    kernel.setup(sizes.warmup)
    state = {"z": z}
    for _ in range(sizes.warmup):
        state = kernel.sample(state)
    start = state["z"].double().cpu().numpy()
    directions = target.test_directions().to(z)
    trace = []

    def sample() -> Tensor:
        nonlocal state
        for _ in range(num_steps):
            state = kernel.sample(state)
            trace.append(state["z"][: sizes.ess_chains] @ directions)
        _sync(device)
        return state["z"]

    _sync(device)
    end, seconds, cpu_use = measure(sample)
    run = Sampled(
        position=end.double().cpu().numpy(),
        acceptance=kernel.diagnostics()["acceptance rate"].double().cpu().numpy(),
        trace=torch.stack(trace, dim=-1).permute(1, 0, 2).double().cpu().numpy(),  # [4, K, N]
        seconds=seconds,
        cpu_use=cpu_use,
    )
    step = torch.as_tensor(kernel.step_size, dtype=torch.float64).cpu()
    step_sizes = step.expand(sizes.chains).numpy()
    row = summarize(name, target, run, step_sizes, grads_per_step) | {"warmup": sizes.warmup}
    return Reference(row, start, step_sizes)


def bench_pyro(
    name: str, target: CorrelatedGaussian, warmup: int, num_samples: int
) -> dict[str, Any]:
    pyro.set_rng_seed(2)
    gen = torch.Generator().manual_seed(2)
    z0 = target.sample(1, gen)[0].float()
    mean, precision = target.mean.float(), target.precision.float()

    def potential_fn(params: dict[str, Tensor]) -> Tensor:
        diff = params["z"] - mean
        return 0.5 * diff @ precision @ diff

    if name == "pyro HMC":
        # Pyro fixes the trajectory length (initial step x num_steps) and adapts the number of
        # leapfrog steps to its adapted step size: 0.5 x 10 matches snfseq's adapted HMC.
        kernel: Any = PyroHMC(
            potential_fn=potential_fn, step_size=0.5, num_steps=10, adapt_mass_matrix=False
        )
    else:
        kernel = NUTS(potential_fn=potential_fn, adapt_mass_matrix=False)
    sampling_start: list[float] = []

    def hook(_kernel: Any, _params: Any, stage: str, i: int) -> None:
        if stage == "Sample" and i == 0:
            sampling_start.append(time.perf_counter())

    mcmc = MCMC(
        kernel,
        num_samples=num_samples,
        warmup_steps=warmup,
        initial_params={"z": z0},
        disable_progbar=True,
        hook_fn=hook,
    )
    mcmc.run()
    # The hook fires after the first sample, so that one step is left out of the time.
    elapsed = (time.perf_counter() - sampling_start[0]) * num_samples / (num_samples - 1)
    samples = mcmc.get_samples()["z"].double()  # [N, D]
    draws = (samples @ target.test_directions()).T[:, None, :].numpy()  # [4, 1, N]
    ess_min, ess_mean = min_ess(draws)
    diagnostics = mcmc.diagnostics()
    return {
        "sampler": name,
        "chains": 1,
        "warmup": warmup,
        "steps": num_samples,
        "seconds": elapsed,
        "chain_steps_per_s": num_samples / elapsed,
        "grad_evals_per_step": kernel.num_steps if name == "pyro HMC" else None,
        "acceptance": float(diagnostics["acceptance rate"]["chain 0"]),
        "step_size": float(kernel.step_size),
        "ess_min": ess_min,
        "ess_mean": ess_mean,
        "ess_min_per_s": ess_min / elapsed,
        "ess_per_chain_step": ess_min / num_samples,
    }


def bench_block(device: torch.device, repeats: int) -> list[dict[str, Any]]:
    """One transition at the paper's block shape: 100 samples x D = 60, published energy."""
    gen = torch.Generator().manual_seed(3)
    y = torch.randn(100, 60, generator=gen).to(device)
    energy = paper_energy(torch.rand(60, generator=gen).to(device), 0.5)
    rows = []
    for name, kernel in (
        ("RWM (step 0.35)", RandomWalkMetropolis(step_size=0.35)),
        ("MALA", MALA(step_size=0.05)),
        ("HMC L=10", HMC(step_size=0.05, num_steps=10)),
    ):
        for _ in range(20):
            kernel.transition(y, energy)
        times = []
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            kernel.transition(y, energy)
            _sync(device)
            times.append(time.perf_counter() - start)
        rows.append(
            {
                "kernel": name,
                "shape": [100, 60],
                "median_us": 1e6 * statistics.median(times),
                "p10_us": 1e6 * float(np.quantile(times, 0.1)),
                "p90_us": 1e6 * float(np.quantile(times, 0.9)),
            }
        )
    return rows


def machine_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "load_average_at_start": list(os.getloadavg()),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def to_markdown(report: dict[str, Any]) -> str:
    info = report["machine"]
    lines = [
        "# Kernel benchmarks",
        "",
        f"Machine: {info['cpu']}, {info['cpu_count']} CPUs, torch {info['torch']} with "
        f"{info['torch_threads']} threads, pyro {info['pyro']}, device {info['device']}, "
        f"load average at start {', '.join(f'{x:.1f}' for x in info['load_average_at_start'])}"
        f"{' (quick mode)' if report['quick'] else ''}.",
        "",
        f"Target: {report['dim']}-D correlated Gaussian, fixed random SPD precision, standard "
        "deviations 0.5 to 2 along random directions; float32; chains start at exact samples "
        "and adapt their step sizes (snfseq: per chain, dual averaging; Pyro: its own) during "
        "warmup; unit mass matrix everywhere.",
        "",
        "| sampler | chains | steps | chain-steps/s | grads/step | accept | mean step | "
        "min bulk ESS | ESS/s | ESS per chain-step |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["samplers"]:
        grads = "-" if row["grad_evals_per_step"] is None else str(row["grad_evals_per_step"])
        lines.append(
            f"| {row['sampler']} | {row['chains']:,} | {row['steps']:,} | "
            f"{row['chain_steps_per_s']:,.0f} | {grads} | {row['acceptance']:.2f} | "
            f"{row['step_size']:.3f} | {row['ess_min']:,.0f} | {row['ess_min_per_s']:,.0f} | "
            f"{row['ess_per_chain_step']:.4f} |"
        )
    lines += [
        "",
        "ESS is the bulk ESS of arviz-stats, the minimum over four test directions (slowest "
        "and fastest principal axes, coordinates 0 and 1). For snfseq it is computed on a "
        f"subset of {report['ess_chains']} independent chains (as ArviZ chains) and scaled by "
        "chains / subset, i.e. the ESS of the whole run. ESS/s divides by the wall time of "
        "the post-warmup sampling phase only, for every sampler: the same budget measure. "
        "Pyro's kernels run one chain (they accept or reject jointly and sync with the host "
        "every step), so the comparison is the throughput a user gets from each tool, not "
        "per chain. Pyro's HMC keeps its trajectory length (0.5 x 10, close to snfseq's "
        "adapted HMC) and adapts its leapfrog count; NUTS grads/step vary with tree depth.",
        "",
        "## One transition at the SNF block shape (100 samples x D = 60, published energy)",
        "",
        "| kernel | median us | p10 us | p90 us |",
        "|---|---:|---:|---:|",
    ]
    for row in report["block"]:
        lines.append(
            f"| {row['kernel']} | {row['median_us']:.0f} | {row['p10_us']:.0f} | "
            f"{row['p90_us']:.0f} |"
        )
    lines += ["", *blackjax_peer.markdown(report["blackjax"]), ""]
    return "\n".join(lines)


def snfseq_kernels() -> list[tuple[str, Kernel, int]]:
    """``(name, fresh kernel, gradient evaluations per step)``, initial step sizes included."""
    return [
        ("RWM", RandomWalkMetropolis(step_size=0.1), 0),
        ("MALA", MALA(step_size=0.05), 1),
        ("HMC L=10", HMC(step_size=0.1, num_steps=10), 10),
        ("HMC L=10 jitter 0.2", HMC(step_size=0.1, num_steps=10, jitter=0.2), 10),
    ]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark, writes ``kernels[_quick].json`` and ``.md``; returns the report."""
    parser = arguments(__doc__)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    peer = blackjax_peer.load(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    if args.quick:
        sizes = Sizes(chains=1_000, ess_chains=100, warmup=100)
        steps = {"RWM": 300, "MALA": 200, "HMC L=10": 60, "HMC L=10 jitter 0.2": 60}
        pyro_warmup, pyro_samples, block_repeats = 50, 100, 200
        # Every BlackJAX kernel compiles for over a second: quick runs leave the funnel out.
        funnel_kernels: tuple[str, ...] = ()
    else:
        sizes = Sizes(chains=10_000, ess_chains=200, warmup=300)
        steps = {"RWM": 3_000, "MALA": 1_000, "HMC L=10": 300, "HMC L=10 jitter 0.2": 300}
        pyro_warmup, pyro_samples, block_repeats = 300, 1_000, 2_000
        funnel_kernels = KERNELS
    target, funnel = CorrelatedGaussian(60), NealFunnel(10)
    report: dict[str, Any] = {
        "machine": machine_info(device),
        "quick": args.quick,
        "dim": 60,
        "ess_chains": sizes.ess_chains,
        "samplers": [],
    }
    gaussian_runs, funnel_runs = {}, {}
    for name, kernel, grads in snfseq_kernels():
        log(f"snfseq {name}")
        run = bench_snfseq(f"snfseq {name}", kernel, target, sizes, steps[name], device, grads)
        report["samplers"].append(run.row)
        if name in KERNELS:
            gaussian_runs[name] = run
    for name, kernel, grads in snfseq_kernels():
        if name in funnel_kernels:
            log(f"snfseq {name} on the {funnel.name()}")
            label = f"snfseq {name}"
            funnel_runs[name] = bench_snfseq(
                label, kernel, funnel, sizes, steps[name], device, grads
            )
    single = bench_snfseq(
        "snfseq HMC L=10, 1 chain",
        HMC(step_size=0.1, num_steps=10),
        target,
        Sizes(chains=1, ess_chains=1, warmup=pyro_warmup),
        pyro_samples,
        device,
        10,
    )
    report["samplers"].append(single.row)
    for name in ("pyro HMC", "pyro NUTS"):
        log(name)
        report["samplers"].append(bench_pyro(name, target, pyro_warmup, pyro_samples))
    report["block"] = bench_block(device, block_repeats)
    report["blackjax"] = blackjax_peer.section(
        peer,
        blackjax_peer.against(peer, target, gaussian_runs, sizes.ess_chains)
        + blackjax_peer.against(peer, funnel, funnel_runs, sizes.ess_chains),
    )
    name = "kernels_quick" if args.quick else "kernels"
    write_report(args.out, name, report, to_markdown(report))
    log(f"wrote {args.out / name}.json and .md")
    return report


if __name__ == "__main__":
    main()
