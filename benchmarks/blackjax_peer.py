"""BlackJAX (JAX on CPU) as the peer of snfseq's vectorized kernels in ``bench_kernels.py``.

Chains are ``jax.vmap`` of one BlackJAX kernel step inside ``jax.lax.scan``, under
``jax.jit``, in float32 (JAX's default): how a BlackJAX user runs thousands of chains. The
kernels come from BlackJAX's ``build_kernel()``, which takes the step size per call, so each
chain runs with its own (the one snfseq adapted for it):

* RWM: ``blackjax.additive_step_random_walk``, whose ``random_step`` returns the STEP the
  kernel adds to the position (``blackjax.rmh`` wants the new position instead; handed a
  step, it runs silently with wrong samples).
* MALA: ``blackjax.mala``, ``x' = x + eps grad log p(x) + sqrt(2 eps) N(0, I)``, snfseq's
  convention.
* HMC: ``blackjax.hmc``, ``L`` velocity-Verlet steps, identity inverse mass matrix.

Compilation is timed apart from the run (ahead of time, ``jit(...).lower(...).compile()``).

Threads: XLA sizes its CPU thread pool once, when JAX starts, from the CPUs the process may
use; this JAX (0.10) has no option for it. ``--xla_cpu_multi_thread_eigen=false`` only makes
Eigen's products single-threaded (a vmapped HMC step still kept 1.5 of two CPUs busy), and
``intra_op_parallelism_threads`` is no XLA flag (with dashes XLA aborts on it, without them
it is silently ignored). So :func:`load` narrows the CPU affinity to ``threads`` CPUs while
JAX starts, then gives every thread started meanwhile the full affinity back: the pool keeps
its size and nothing stays pinned.

The row arithmetic (:func:`summarize`: throughput, bulk ESS, acceptance, the moment check)
lives here so that snfseq's rows and BlackJAX's come from the same code. jax and blackjax are
optional (the ``bench`` extra): without them :func:`load` returns the reason to report.
"""

from __future__ import annotations

import importlib
import math
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

import numpy as np
from arviz_stats.base import array_stats
from machine import log

__all__ = [
    "KERNELS",
    "Peer",
    "Reference",
    "Sampled",
    "against",
    "funnel",
    "gaussian",
    "load",
    "markdown",
    "measure",
    "min_ess",
    "run",
    "summarize",
]

#: The BlackJAX kernels run against snfseq's, by snfseq's row name.
KERNELS = ("RWM", "MALA", "HMC L=10")

Result = TypeVar("Result")


def measure(call: Callable[[], Result]) -> tuple[Result, float, float]:
    """``(call(), wall seconds, CPU seconds of the whole process / wall seconds)``."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    result = call()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result, wall, cpu / wall


@dataclass(frozen=True)
class Peer:
    """The imported JAX and BlackJAX, their versions and how JAX's threads were set."""

    jax: Any
    blackjax: Any
    versions: dict[str, str]
    threads: str


def _threads() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/task")}


@contextmanager
def _cpus_while_starting(threads: int | None) -> Iterator[str]:
    """Limits the CPUs of the threads started inside to ``threads``; yields what it did."""
    if not (hasattr(os, "sched_getaffinity") and os.path.isdir("/proc/self/task")):
        yield "XLA default: one per CPU (this OS has no per-thread CPU affinity to narrow)"
        return
    allowed = os.sched_getaffinity(0)
    if threads is None or threads >= len(allowed):
        yield f"XLA default: a pool over all {len(allowed)} CPUs this process may use"
        return
    before = _threads()
    os.sched_setaffinity(0, sorted(allowed)[:threads])
    try:
        yield (
            f"{threads} (XLA's pool sized by narrowing the CPU affinity to {threads} of "
            f"{len(allowed)} CPUs while JAX started, then restoring it)"
        )
    finally:
        os.sched_setaffinity(0, allowed)
        for thread in _threads() - before:
            try:
                os.sched_setaffinity(thread, allowed)
            except OSError:  # the thread has ended
                pass


def load(threads: int | None) -> Peer | str:
    """Imports jax and blackjax and starts JAX's CPU backend with ``threads`` threads.

    Returns:
        The :class:`Peer`, or why it is not available (jax or blackjax not importable).
    """
    already = "jax" in sys.modules
    try:
        jax = importlib.import_module("jax")
        blackjax = importlib.import_module("blackjax")
    except ImportError as error:
        return f"jax/blackjax not importable ({error}); install the `bench` extra"
    if already and _backend_started(jax):
        description = "as set when JAX first started in this process (it cannot change)"
        jax.devices("cpu")
    else:
        with _cpus_while_starting(threads) as description:
            jax.devices("cpu")
    versions = {"jax": jax.__version__, "blackjax": blackjax.__version__}
    return Peer(jax=jax, blackjax=blackjax, versions=versions, threads=description)


def _backend_started(jax: Any) -> bool:
    try:
        from jax._src.xla_bridge import backends_are_initialized
    except ImportError:  # a private name: assume started, the cautious answer
        return True
    return bool(backends_are_initialized())


def gaussian(peer: Peer, mean: np.ndarray, precision: np.ndarray) -> Callable[[Any], Any]:
    """``log p(x) = -0.5 (x - mean)^T P (x - mean)`` with its closed-form gradient ``-P (x -
    mean)`` (a ``custom_jvp``: autodiff of the quadratic form would do two products, snfseq's
    closed form does one).

    Args:
        peer: From :func:`load`.
        mean: ``[D]``.
        precision: ``[D, D]``, symmetric.
    """
    jax, jnp = peer.jax, peer.jax.numpy
    mean_, precision_ = jnp.asarray(mean, jnp.float32), jnp.asarray(precision, jnp.float32)

    @jax.custom_jvp
    def logdensity(x: Any) -> Any:
        diff = x - mean_
        return -0.5 * (diff @ precision_) @ diff

    @logdensity.defjvp
    def _(primals: tuple[Any], tangents: tuple[Any]) -> tuple[Any, Any]:
        diff = primals[0] - mean_
        grad = diff @ precision_
        return -0.5 * grad @ diff, -grad @ tangents[0]

    return logdensity


def funnel(peer: Peer, scale: float = 3.0) -> Callable[[Any], Any]:
    """Neal's funnel over ``[v, x_1..x_{D-1}]``: ``v ~ N(0, scale^2)``, ``x_i | v ~ N(0, e^v)``
    (gradient by autodiff, all elementwise)."""
    jnp = peer.jax.numpy

    def logdensity(x: Any) -> Any:
        v, rest = x[0], x[1:]
        return -(
            0.5 * (v / scale) ** 2 + 0.5 * rest.shape[0] * v + 0.5 * jnp.exp(-v) * jnp.sum(rest**2)
        )

    return logdensity


class Sampled(NamedTuple):
    """What a vectorized run of ``C`` chains (snfseq's or BlackJAX's) leaves: ``position [C,
    D]`` at the end, ``acceptance [C]`` (rate per chain), ``trace [4, K, N]`` (the first ``K``
    chains along four test directions, float64), run seconds, the CPUs busy meanwhile
    (process CPU time / wall time) and, for JAX, the seconds compiling beforehand."""

    position: np.ndarray
    acceptance: np.ndarray
    trace: np.ndarray
    seconds: float
    cpu_use: float
    compile_s: float | None = None


def _step_fn(peer: Peer, kernel: str, logdensity: Callable, dim: int) -> tuple[Callable, Callable]:
    """``(init(position), step(key, state, step_size) -> (state, info))`` of one chain."""
    jax, blackjax = peer.jax, peer.blackjax
    name, _, leapfrogs = kernel.partition(" L=")
    algorithms = {"RWM": blackjax.additive_step_random_walk, "MALA": blackjax.mala}
    algorithm = algorithms.get(name, blackjax.hmc if name == "HMC" and leapfrogs else None)
    if algorithm is None:
        raise ValueError(f"no BlackJAX kernel for {kernel!r}")
    transition = algorithm.build_kernel()
    unit = jax.numpy.ones(dim, jax.numpy.float32)  # HMC's inverse mass matrix

    def step(key: Any, state: Any, step_size: Any) -> Any:
        if name == "RWM":

            def random_step(key: Any, position: Any) -> Any:  # the step, not the new position
                return step_size * jax.random.normal(key, position.shape, position.dtype)

            return transition(key, state, logdensity, random_step)
        if name == "MALA":
            return transition(key, state, logdensity, step_size)
        return transition(key, state, logdensity, step_size, unit, int(leapfrogs))

    return (lambda position: algorithm.init(position, logdensity)), step


def run(
    peer: Peer,
    kernel: str,
    logdensity: Callable[[Any], Any],
    start: np.ndarray,
    step_sizes: np.ndarray,
    num_steps: int,
    ess_chains: int,
    directions: np.ndarray,
    seed: int = 4,
) -> Sampled:
    """Runs ``C`` chains of a BlackJAX kernel for ``num_steps`` steps, compiled beforehand.

    Args:
        peer: From :func:`load`.
        kernel: One of :data:`KERNELS`.
        logdensity: ``x [D] -> log p(x)``, e.g. from :func:`gaussian`.
        start: The chains' positions, ``[C, D]``.
        step_sizes: One step size per chain, ``[C]``.
        num_steps: Steps of every chain.
        ess_chains: ``K``, the chains whose trace is kept for the ESS.
        directions: ``[D, 4]``, the trace's projections.
        seed: Of ``jax.random.key``.
    """
    jax, jnp = peer.jax, peer.jax.numpy
    num_chains, dim = start.shape
    init, step = _step_fn(peer, kernel, logdensity, dim)
    project = jnp.asarray(directions, jnp.float32)

    def chains(key: Any, position: Any, step_size: Any) -> tuple[Any, Any, Any]:
        def one_step(carry: tuple[Any, Any], key: Any) -> tuple[tuple[Any, Any], Any]:
            state, accepted = carry
            keys = jax.random.split(key, num_chains)
            state, info = jax.vmap(step)(keys, state, step_size)
            return (state, accepted + info.is_accepted), state.position[:ess_chains] @ project

        carry = (jax.vmap(init)(position), jnp.zeros(num_chains, jnp.int32))
        (state, accepted), trace = jax.lax.scan(one_step, carry, jax.random.split(key, num_steps))
        return state.position, accepted, trace

    args = (
        jax.random.key(seed),
        jnp.asarray(start, jnp.float32),
        jnp.asarray(step_sizes, jnp.float32),
    )
    compiled, compile_s, _ = measure(lambda: jax.jit(chains).lower(*args).compile())
    (position, accepted, trace), seconds, cpu_use = measure(
        lambda: jax.block_until_ready(compiled(*args))
    )
    return Sampled(
        position=np.asarray(position, np.float64),
        acceptance=np.asarray(accepted, np.float64) / num_steps,
        trace=np.asarray(trace, np.float64).transpose(2, 1, 0),
        seconds=seconds,
        cpu_use=cpu_use,
        compile_s=compile_s,
    )


class Target(Protocol):
    """A target of ``bench_kernels``: exact marginals ``([D], [D])`` (means, sds), whether
    they are checked, four test directions ``[D, 4]`` and its log-density in JAX."""

    moments_checked: bool

    def name(self) -> str: ...
    def marginals(self) -> tuple[np.ndarray, np.ndarray]: ...
    def directions(self) -> np.ndarray: ...
    def jax_logdensity(self, peer: Peer) -> Callable[[Any], Any]: ...


def min_ess(draws: np.ndarray) -> tuple[float, float]:
    """Bulk ESS of ``[coords, chains, draws]``: (min, mean) over coordinates."""
    ess = np.asarray(array_stats.ess(draws, chain_axis=-2, draw_axis=-1, method="bulk"))
    return float(ess.min()), float(ess.mean())


def moments(position: np.ndarray, target: Target) -> dict[str, Any]:
    """How far the end states ``[C, D]`` of all chains lie from the target's exact marginals.

    Chains that start in the target stay in it under an invariant kernel, so the errors are
    sampling noise: ``N(0, 1/C)`` for a mean in standard deviations and ``N(0, 1/(2C))`` for
    a relative standard deviation (Gaussian target). The tolerances are five of those sigmas.
    A kernel that moves the chains but leaves the wrong distribution invariant fails them.
    """
    mean, sd = target.marginals()
    chains = position.shape[0]
    mean_error = float(np.max(np.abs(position.mean(0) - mean) / sd))
    sd_error = float(np.max(np.abs(position.std(0) / sd - 1.0)))
    tolerance = {"mean_error_sd": 5 / math.sqrt(chains), "sd_error": 5 / math.sqrt(2 * chains)}
    passed = mean_error < tolerance["mean_error_sd"] and sd_error < tolerance["sd_error"]
    return {
        "mean_error_sd": mean_error,
        "sd_error": sd_error,
        "moment_tolerance": tolerance,
        "moments_ok": passed if target.moments_checked else None,
    }


def summarize(
    name: str, target: Target, run: Sampled, step_sizes: np.ndarray, grads_per_step: int
) -> dict[str, Any]:
    """One row of a vectorized run: the same arithmetic for snfseq and BlackJAX."""
    ess_min, ess_mean = min_ess(run.trace)
    chains, steps, ess_chains = run.position.shape[0], run.trace.shape[-1], run.trace.shape[-2]
    # Chains are independent, so the ESS of all chains is the subset's times C / K.
    scale = chains / ess_chains
    row = {
        "sampler": name,
        "chains": chains,
        "steps": steps,
        "seconds": run.seconds,
        "cpu_use": run.cpu_use,
        "chain_steps_per_s": chains * steps / run.seconds,
        "grad_evals_per_step": grads_per_step,
        "acceptance": float(run.acceptance.mean()),
        "step_size": float(step_sizes.mean()),
        "ess_min": ess_min * scale,
        "ess_mean": ess_mean * scale,
        "ess_min_per_s": ess_min * scale / run.seconds,
        "ess_per_chain_step": ess_min / (ess_chains * steps),
    }
    if run.compile_s is not None:
        row["compile_s"] = run.compile_s
    return row | (moments(run.position, target) if chains >= 100 else {})


class Reference(NamedTuple):
    """An snfseq run for BlackJAX to repeat: its row, where sampling started and with which
    step sizes."""

    row: dict[str, Any]
    start: np.ndarray  # [C, D], the states after warmup
    step_sizes: np.ndarray  # [C], the step sizes adapted per chain


def against(
    peer: Peer | str, target: Target, references: dict[str, Reference], ess_chains: int
) -> list[dict[str, Any]]:
    """Repeats every snfseq run in BlackJAX (same start, step sizes and steps) and pairs the
    rows: ``{target, kernel, snfseq, blackjax (None when skipped), snfseq_over_blackjax}``."""
    pairs = []
    for kernel, ref in references.items():
        row, ratios = None, None
        if isinstance(peer, Peer):
            log(f"BlackJAX {kernel} on the {target.name()}")
            logdensity, steps = target.jax_logdensity(peer), ref.row["steps"]
            args = (ref.start, ref.step_sizes, steps, ess_chains, target.directions())
            sampled = run(peer, kernel, logdensity, *args)
            grads = ref.row["grad_evals_per_step"]
            row = summarize(f"BlackJAX {kernel}", target, sampled, ref.step_sizes, grads)
            ratios = {
                key: ref.row[key] / row[key] for key in ("chain_steps_per_s", "ess_min_per_s")
            }
        pair = {"target": target.name(), "kernel": kernel, "snfseq": ref.row, "blackjax": row}
        pairs.append(pair | {"snfseq_over_blackjax": ratios})
    return pairs


def section(peer: Peer | str, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's ``blackjax`` part."""
    available = isinstance(peer, Peer)
    return {
        "available": available,
        "skipped_because": None if available else peer,
        "versions": peer.versions if available else None,
        "threads": peer.threads if available else None,
        "pairs": pairs,
    }


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown(part: dict[str, Any]) -> list[str]:
    """The report's section on BlackJAX, as Markdown lines."""
    lines = ["## snfseq against BlackJAX", ""]
    if part["available"]:
        versions = part["versions"]
        lines.append(
            f"jax {versions['jax']} (CPU), blackjax {versions['blackjax']}, JAX threads: "
            f"{part['threads']}."
        )
    else:
        lines.append(f"BlackJAX skipped: {part['skipped_because']}.")
    lines += [
        "",
        "| target | kernel | library | chains | steps | chain-steps/s | min bulk ESS | ESS/s | "
        "accept | mean step | mean err (sd) | sd err | CPUs busy | compile s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for pair in part["pairs"]:
        for library in ("snfseq", "blackjax"):
            row = pair[library]
            if row is None:
                continue
            lines.append(
                f"| {pair['target']} | {pair['kernel']} | {row['sampler'].split()[0]} | "
                f"{row['chains']:,} | {row['steps']:,} | {row['chain_steps_per_s']:,.0f} | "
                f"{row['ess_min']:,.0f} | {row['ess_min_per_s']:,.0f} | "
                f"{row['acceptance']:.3f} | {row['step_size']:.3f} | "
                f"{_cell(row.get('mean_error_sd'), '.3f')} | {_cell(row.get('sd_error'), '.3f')} | "
                f"{row['cpu_use']:.2f} | {_cell(row.get('compile_s'), '.2f')} |"
            )
    ratios = [pair for pair in part["pairs"] if pair["snfseq_over_blackjax"] is not None]
    if ratios:
        lines += [
            "",
            "| target | kernel | chain-steps/s snfseq / BlackJAX | ESS/s snfseq / BlackJAX |",
            "|---|---|---:|---:|",
        ]
        for pair in ratios:
            ratio = pair["snfseq_over_blackjax"]
            lines.append(
                f"| {pair['target']} | {pair['kernel']} | {ratio['chain_steps_per_s']:.2f} | "
                f"{ratio['ess_min_per_s']:.2f} |"
            )
    lines += [
        "",
        "Each BlackJAX run starts from the states where snfseq's run began sampling (after its "
        "warmup) with the step size snfseq adapted for each chain, for as many steps: the same "
        "kernels, so acceptance rates should agree. BlackJAX: `jax.vmap` of the kernel's step "
        "(`build_kernel()`: RWM `additive_step_random_walk`, `mala`, `hmc` with an identity "
        "inverse mass matrix) inside `jax.lax.scan` under `jax.jit`, float32, threefry keys "
        "(one per chain and step); the Gaussian's log-density has its closed-form gradient "
        "(`custom_jvp`), the funnel's is autodiff. Compile time (ahead of time, "
        "`lower().compile()`) is apart from the run. ESS and moments: the same code for both. "
        "Mean err: the largest |mean - exact mean| / sd over coordinates of the end states of "
        "all chains; sd err: the largest |sd / exact sd - 1|. On the Gaussian both must stay "
        "under 5 sampling sigmas (5 / sqrt(C), 5 / sqrt(2C)); on the funnel they are shown "
        "only (its x have heavy tails). CPUs busy: process CPU time / wall time of the run.",
    ]
    return lines
