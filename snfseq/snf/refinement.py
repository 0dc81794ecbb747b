"""Where and how MCMC blocks run between flow layers, and the one loop that runs them.

Example:
    >>> import torch
    >>> from snfseq.energy import Gaussian
    >>> from snfseq.flows import build_flow
    >>> flow = build_flow("realnvp", features=2, transforms=2, hidden=(8,))
    >>> refinement = Refinement(kernel="mala", steps=3)
    >>> result = refinement.run(flow, torch.randn(10, 2), target=Gaussian(torch.ones(2)))
    >>> result.y.shape, result.log_weight.shape
    (torch.Size([10, 2]), torch.Size([10]))
"""

from __future__ import annotations

import math

__all__ = ["KERNELS", "Refinement", "RefinementResult"]

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from snfseq import energy as energies
from snfseq import kernels
from snfseq.flows import ConditionalFlow
from snfseq.snf.chains import Chain, Trace, run_chain
from snfseq.snf.targets import ForecastStep
from snfseq.weights import resample_degenerate

KernelName = Literal["rwm", "mala", "hmc", "per-coordinate"]
#: The kernels a refinement can run, by name.
KERNELS: dict[str, type[kernels.Kernel]] = {
    "rwm": kernels.RandomWalkMetropolis,
    "mala": kernels.MALA,
    "hmc": kernels.HMC,
    "per-coordinate": kernels.PerCoordinateMetropolis,
}
TargetBuilder = Callable[[ForecastStep], energies.EnergyLike]


@dataclass
class RefinementResult:
    """One refined draw.

    Attributes:
        y: ``Tensor[N, D]``, the samples.
        log_weight: ``Tensor[N]`` path log-weights; None when the kernel does not leave its
            energies invariant (the published per-coordinate walk), so weights mean nothing.
        trace: The blocks' :class:`~snfseq.snf.Trace`, when recorded.
        ancestors: ``Tensor[N]`` (long), the row each output row descends from when the
            rows were resampled; None when they were not.

    Example:
        >>> import torch
        >>> from snfseq.energy import Gaussian
        >>> from snfseq.flows import build_flow
        >>> flow = build_flow("realnvp", 2, transforms=2, hidden=(8,))
        >>> walk = Refinement(kernel="per-coordinate", steps=1)  # not invariant: no weights
        >>> result = walk.run(flow, torch.randn(4, 2), target=Gaussian(torch.zeros(2)))
        >>> result.y.shape, result.log_weight, result.trace
        (torch.Size([4, 2]), None, None)
    """

    y: Tensor
    log_weight: Tensor | None
    trace: Trace | None = None
    ancestors: Tensor | None = None


@dataclass
class Refinement:
    """Where and how MCMC blocks run between flow layers.

    Args:
        kernel: ``"rwm"`` (random-walk Metropolis), ``"mala"``, ``"hmc"``, or
            ``"per-coordinate"`` (the published code's walk, for comparison only: not a valid
            Metropolis kernel, so no weights are reported).
        step_size: Kernel step size: one for all blocks, or one per block.
        steps: Kernel transitions per block; 0 runs none, which leaves importance sampling
            towards the target (with ``prior="flow"`` and ``resample``: a bootstrap particle
            filter over the forecast steps).
        after: Sampling steps (0-based: 0 is the first layer applied to the noise) after which
            a block runs; None runs one after every layer. A step listed ``n`` times gets
            ``n`` blocks in a row: with ``prior="flow"`` every block targets a tempered
            posterior whatever its layer, so the annealing can take more blocks than the
            flow has layers (e.g. ``after=[-1] * 6`` with six ``lam`` values). Step ``-1``
            is the base noise before any layer: there the flow's density is ``N(0, I)``, so
            the flow whitens the posterior for the kernel (as in neural-transport MCMC).
        lam: ``"linear"`` (``j / (J - 1)`` for block ``j`` of ``J``; 1 for a single block) or a
            list with one value per block.
        target: ``"gaussian"``: ``|y - yhat|^2 / (2 target_scale^2)`` around the trained point
            head; ``"paper"``: the published ``|y - yhat|^2``; or a builder
            ``ForecastStep -> Energy`` called at every forecast step (see
            :class:`~snfseq.snf.ForecastStep`; ``step.to_data.pull_back(e)`` turns an energy
            written in data units into one on the flow's space). :func:`snfseq.snf.sample`
            takes any energy instead.
        target_scale: Scale of the ``"gaussian"`` target, in the flow's standardised units.
        prior: ``"normal"`` (as published): blocks move from the base ``N(0, I)`` towards
            the target, which replaces the flow's density; ``"flow"``: the target is the
            flow's own forecast tilted by the target energy, ``q(y | c) exp(-u(y))`` (a prior
            times a likelihood, e.g. :class:`~snfseq.energy.Observed`), so the forecast keeps
            the flow's modes and correlations; block ``j`` runs on the flow's density at its
            layer plus ``lam_j`` times the energy of the layer's output pushed to the end
            (one flow pass per evaluation); blocks on the base noise, ``after=[-1] * J``,
            with ``lam`` rising to 1 and ``resample``, work best (``docs/refinement.md``).
            ``intermediate`` applies to ``"normal"`` only.
        intermediate: ``"interpolate"`` (cheap, as published) or ``"pullback"`` (the flow's
            own density interpolated with the pulled-back target; see :mod:`snfseq.snf`).
        adjusted: For MALA/HMC: Metropolis-adjust (exact blocks) or not (the path weight
            corrects instead).
        num_leapfrog: Leapfrog steps per HMC transition.
        resample: In a forecast, resample a series' paths (frames and recurrent states
            together, within the series) before a step when the Kish ESS of their path weights
            since the last resampling is below ``resample x S``, and with ``prior="flow"``
            also inside a step, before each block whose energy (a tempered posterior) their
            weights fit that badly; then their weights start equal again (sequential Monte
            Carlo). None never resamples.
        resampling: ``"systematic"`` or ``"multinomial"`` (:func:`snfseq.weights.resample`).

    Example:
        >>> r = Refinement.paper()
        >>> r.kernel, r.steps, r.step_size, r.lambdas(5).tolist()
        ('rwm', 2, 0.35, [0.0, 0.25, 0.5, 0.75, 1.0])
        >>> Refinement.paper(faithful=True).kernel
        'per-coordinate'
    """

    kernel: KernelName = "mala"
    step_size: float | Sequence[float] = 0.05
    steps: int = 2
    after: Sequence[int] | None = None
    lam: Literal["linear"] | Sequence[float] = "linear"
    target: Literal["gaussian", "paper"] | TargetBuilder = "gaussian"
    target_scale: float = 1.0
    prior: Literal["normal", "flow"] = "normal"
    intermediate: Literal["interpolate", "pullback"] = "interpolate"
    adjusted: bool = True
    num_leapfrog: int = 5
    resample: float | None = None
    resampling: Literal["systematic", "multinomial"] = "systematic"

    def __post_init__(self) -> None:
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {sorted(KERNELS)}, got {self.kernel!r}")
        if not isinstance(self.steps, int):
            raise ValueError(f"steps must be an integer, got {self.steps!r}")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        sizes = [self.step_size] if isinstance(self.step_size, (int, float)) else self.step_size
        if not all(0 < float(size) < math.inf for size in sizes):
            raise ValueError(f"step_size must be positive and finite, got {self.step_size!r}")
        if not isinstance(self.lam, str) and not all(math.isfinite(v) for v in self.lam):
            raise ValueError(f"lam must hold finite values, got {self.lam!r}")
        if self.prior not in ("normal", "flow"):
            raise ValueError(f"prior must be 'normal' or 'flow', got {self.prior!r}")
        if not callable(self.target) and self.target not in ("gaussian", "paper"):
            raise ValueError(
                f"target must be 'gaussian', 'paper' or a callable ForecastStep -> Energy, "
                f"got {self.target!r}"
            )
        if self.intermediate not in ("interpolate", "pullback"):
            raise ValueError(
                f"intermediate must be 'interpolate' or 'pullback', got {self.intermediate!r}"
            )
        if not 0 < self.target_scale < math.inf:
            raise ValueError(f"target_scale must be > 0 and finite, got {self.target_scale}")
        if self.resample is not None and not 0 < self.resample <= 1:
            raise ValueError(f"resample must be a fraction in (0, 1] or None, got {self.resample}")
        if self.resampling not in ("systematic", "multinomial"):
            raise ValueError(
                f"resampling must be 'systematic' or 'multinomial', got {self.resampling!r}"
            )

    @classmethod
    def paper(cls, faithful: bool = False) -> Refinement:
        """The published GRU-SNF configuration.

        Random-walk Metropolis after each of the flow's layers, 2 proposals of step 0.35,
        lambda linear from 0 to 1, energy ``(1 - lam) |y|^2 / 2 + lam |yhat - y|^2``.
        ``faithful=True`` swaps in the published per-coordinate walk and nothing else; the
        published code also fed every sample's recurrent state the sample mean, which is
        the model's choice: ``model.forecast(..., feedback="mean", refinement=
        Refinement.paper(faithful=True))`` reproduces it.

        Args:
            faithful: Use the published per-coordinate accept (comparison only).
        """
        return cls(
            kernel="per-coordinate" if faithful else "rwm",
            step_size=0.35,
            steps=2,
            lam="linear",
            target="paper",
            intermediate="interpolate",
        )

    @property
    def faithful(self) -> bool:
        """Whether the kernel is the published per-coordinate walk."""
        return self.kernel == "per-coordinate"

    def blocks(self, num_layers: int) -> list[int]:
        """Sampling steps after which a block runs."""
        after = list(range(num_layers)) if self.after is None else sorted(self.after)
        bad = [k for k in after if not -1 <= k < num_layers]
        if bad:
            raise ValueError(f"after={bad} is outside the flow's {num_layers} layers")
        return after

    def lambdas(self, num_blocks: int) -> Tensor:
        """``Tensor[J]`` interpolation weights of the blocks."""
        if isinstance(self.lam, str):
            if self.lam != "linear":
                raise ValueError(f"lam must be 'linear' or a list, got {self.lam!r}")
            if num_blocks == 1:
                return torch.ones(1)
            return torch.arange(num_blocks, dtype=torch.float32) / (num_blocks - 1)
        lam = torch.as_tensor(list(self.lam), dtype=torch.float32)
        if lam.numel() != num_blocks:
            raise ValueError(f"lam has {lam.numel()} values for {num_blocks} blocks")
        return lam

    def step_sizes(self, num_blocks: int) -> Tensor:
        """``Tensor[J]`` step size of each block."""
        if isinstance(self.step_size, (int, float)):
            return torch.full((num_blocks,), float(self.step_size))
        sizes = torch.as_tensor(list(self.step_size), dtype=torch.float32)
        if sizes.numel() != num_blocks:
            raise ValueError(f"step_size has {sizes.numel()} values for {num_blocks} blocks")
        return sizes

    def target_for(self, step: ForecastStep) -> energies.Energy:
        """The target ``u_X`` on the flow's space at one forecast step."""
        if callable(self.target):
            return energies.as_energy(self.target(step))
        if self.target == "paper":
            return energies.SquaredDistance(step.yhat)
        return energies.Gaussian(step.yhat, self.target_scale)

    def make_kernel(self) -> kernels.Kernel:
        """A fresh kernel instance (fixed step sizes; the blocks pass theirs per call)."""
        options: dict[str, Any] = {"adapt_step_size": False}
        if self.kernel in ("mala", "hmc"):
            options["adjusted"] = self.adjusted
        if self.kernel == "hmc":
            options["num_steps"] = self.num_leapfrog
        return KERNELS[self.kernel](step_size=0.1, **options)

    def block_energy(
        self,
        flow: ConditionalFlow,
        k: int,
        c: Tensor | None,
        target: energies.Energy,
        lam: Tensor | float,
    ) -> energies.Energy:
        """The energy ``u_j`` of the block that runs after sampling step ``k``.

        With ``target="paper"`` and ``intermediate="interpolate"`` this is the published
        ``(1 - lam) |y|^2 / 2 + lam |yhat - y|^2``; with ``prior="flow"`` it is
        ``-log q_k(y) + lam u(f_k(y))`` (``q_k`` the flow's density after step ``k``, ``f_k``
        the remaining layers).
        """
        base = energies.StandardNormal()
        if self.prior == "flow":
            return flow_energy(flow, k, c) + lam * _pushed(target, flow, k, c)
        if self.intermediate == "interpolate":
            # A Gaussian-type target makes the block one quadratic: a few ops per evaluation.
            return energies.simplified(energies.Interpolated(base, target, lam))
        own = flow_energy(flow, k, c)
        pulled = energies.PullBack(target, lambda y: flow.partial_forward(y, k, c))
        return energies.Interpolated(own, pulled, lam)

    def run(
        self,
        flow: ConditionalFlow,
        z: Tensor,
        c: Tensor | None = None,
        *,
        target: energies.EnergyLike | None = None,
        step: ForecastStep | None = None,
        batch_shape: Sequence[int] | None = None,
        record: bool = False,
        num_draws: int | None = None,
        num_warmup: int = 0,
        resample_blocks: bool = False,
    ) -> RefinementResult:
        """Pushes base noise through the flow with MCMC blocks: the one refinement loop.

        Every block runs :func:`~snfseq.snf.run_chain` on its energy and hands on its state
        after :attr:`steps` transitions. A diagnostic run (``num_draws`` given) records
        ``num_draws`` transitions after ``num_warmup`` in every block from the same start,
        and still hands on the state after ``steps``, so the later blocks meet what they
        meet when forecasting; with ``num_warmup=0, num_draws=steps`` it is draw for draw
        the forecast's own run.

        Args:
            flow: The flow to sample.
            z: Base noise ``Tensor[*N, D]`` (every leading index a sampled row or chain).
            c: Condition ``Tensor[*N, C]`` (None for unconditional flows).
            target: The target energy; or give ``step`` to build the configured one.
            step: The forecast step the configured target is built from.
            batch_shape: How the rows split (e.g. ``(S, B)``) in the recorded trace.
            record: Keep a :class:`~snfseq.snf.Trace`.
            num_draws: Transitions recorded per block (default: the ``steps`` it runs).
            num_warmup: Transitions run and not recorded first (with ``num_draws``).
            resample_blocks: With :attr:`resample`, resample the rows of each column of
                ``batch_shape = (S, ...)`` before a block when the Kish ESS of their weights
                against the block's energy is below ``resample x S`` (an SMC sampler, as in
                annealed flow transport); ``ancestors`` then says which row each came from.
                A copy takes its ancestor's condition and, for a target built from ``step``,
                its ancestor's target; a ``target`` given directly must not depend on the
                row within a column.
                A forecast does this inside every step with ``prior="flow"``, and between
                steps on the paths' accumulated weights (:mod:`snfseq.rollout`).

        Returns:
            A :class:`RefinementResult`.
        """
        given = target is not None
        if target is None:
            if step is None:
                raise ValueError("give either a target energy or the forecast step to build it")
            target = self.target_for(step)
        # Collapsed once (a Gaussian-type target becomes one quadratic) for every block.
        target = energies.simplified(energies.as_energy(target))
        blocks = self.blocks(flow.num_layers)
        # Plain floats: they are configuration, and tensors would cost a conversion per call.
        lambdas = self.lambdas(len(blocks)).tolist()
        sizes = self.step_sizes(len(blocks)).tolist()
        kernel = self.make_kernel()
        draws = self.steps if num_draws is None else num_draws
        log_weight = energies.StandardNormal()(z)
        runs: list[Chain] = []
        y, ancestors = z, None
        smc = resample_blocks and self.resample is not None and batch_shape is not None
        for k in range(-1, flow.num_layers):  # -1: on the base noise, before any layer
            if k >= 0:
                y, ladj = flow.inverse_layer(k, y, c)
                log_weight = log_weight + ladj
            for j in (j for j, layer in enumerate(blocks) if layer == k):
                energy = self.block_energy(flow, k, c, target, lambdas[j])
                if smc:
                    assert batch_shape is not None
                    moved = self._resampled(energy, y, log_weight, batch_shape[0])
                    if moved is not None:
                        index, log_weight = moved
                        y = y[index]
                        ancestors = index if ancestors is None else ancestors[index]
                        # A copy continues its ancestor's path: its condition and its own
                        # target (a forecast's rows each have their state and last frame).
                        c = None if c is None else c[index]
                        if step is not None and not given:
                            step = step.rows(index)
                            target = energies.simplified(energies.as_energy(self.target_for(step)))
                        energy = self.block_energy(flow, k, c, target, lambdas[j])
                chain = run_chain(
                    kernel,
                    energy,
                    y,
                    draws,
                    num_warmup=num_warmup,
                    step_size=sizes[j],
                    handoff=self.steps,
                    record=record,
                )
                y, log_weight = chain.final, log_weight + chain.log_weight
                runs.append(chain)
        recorded = record and any(run.states is not None for run in runs)
        trace = _trace(runs, blocks, lambdas, sizes, batch_shape) if recorded else None
        if not kernel.invariant and self.steps > 0:
            return RefinementResult(y=y, log_weight=None, trace=trace, ancestors=ancestors)
        weight = log_weight - target(y)
        if self.prior == "flow":  # the target is the flow's density tilted by u
            weight = weight - flow_energy(flow, flow.num_layers - 1, c)(y)
        return RefinementResult(y=y, log_weight=weight, trace=trace, ancestors=ancestors)

    def _resampled(
        self, energy: energies.Energy, y: Tensor, log_weight: Tensor, samples: int
    ) -> tuple[Tensor, Tensor] | None:
        """Rows ``y: Tensor[S * B, D]`` (row ``s * B + b``) resampled within each ``b`` whose
        weights against ``energy`` have an ESS below the threshold, and the copies' running
        log-weights (restarting at their column's mean); None when no column needs it."""
        assert self.resample is not None
        with torch.no_grad():
            own = energy(y).detach().reshape(samples, -1)
        omega = log_weight.reshape(samples, -1) - own  # [S, B] against the block's energy
        moved = resample_degenerate(omega, self.resample, self.resampling)
        if moved is None:
            return None
        index, restarted = moved
        return index, (own.flatten()[index].reshape(omega.shape) + restarted).reshape(
            log_weight.shape
        )


def flow_energy(flow: ConditionalFlow, k: int, c: Tensor | None) -> energies.Energy:
    """``-log q_k(y)`` (up to a constant): the flow's own energy after sampling step ``k``."""
    return energies.PullBack(energies.StandardNormal(), lambda y: flow.partial_inverse(y, k, c))


def _pushed(
    target: energies.Energy, flow: ConditionalFlow, k: int, c: Tensor | None
) -> energies.Energy:
    """``u(f_k(y))``: the target evaluated where the remaining layers take ``y`` (no log-det:
    under ``prior="flow"`` the target is a likelihood, not a density)."""
    if k == flow.num_layers - 1:
        return target
    return energies.Potential(lambda y: target(flow.partial_forward(y, k, c)[0]))


def _trace(
    runs: list[Chain],
    blocks: list[int],
    lambdas: list[float],
    sizes: list[float],
    batch_shape: Sequence[int] | None,
) -> Trace:
    """Stacks the blocks' recorded chains ``[M, *N(, D)]`` into a ``[J, M, *batch(, D)]`` trace."""

    def stacked(values: list[Tensor | None], event: int) -> Tensor:
        tensor = torch.stack([v for v in values if v is not None])
        if batch_shape is None:
            return tensor
        head = tensor.shape[:2]
        tail = tensor.shape[tensor.dim() - event :]
        return tensor.reshape(*head, *batch_shape, *tail)

    return Trace(
        states=stacked([r.states for r in runs], 1),
        energies=stacked([r.energies for r in runs], 0),
        accepted=stacked([r.accepted for r in runs], 0),
        blocks=blocks,
        lam=torch.tensor(lambdas),
        step_size=torch.tensor(sizes),
    )
