"""Stochastic refinement between flow layers (Stochastic Normalizing Flows, GRU-SNF).

Sampling a :class:`snfseq.flows.ConditionalFlow` runs ``K`` invertible layers from base noise
``z`` to data ``x``. A :class:`Refinement` inserts MCMC blocks after chosen layers: block ``j``
runs ``steps`` transitions of a kernel from :mod:`snfseq.kernels` on the intermediate variable,
leaving the energy ``u_j`` invariant, with ``u_j`` interpolating from the base energy
``u_Z = |y|^2 / 2`` to the target ``u_X`` as ``lambda_j`` goes from 0 to 1.

Every path carries the log importance weight of Wu, Koehler & Noe (2020)::

    log w = -u_X(x) + u_Z(z) + sum_layers log|det J| + sum_blocks dS

with ``dS = u_j(y_out) - u_j(y_in)`` for Metropolis-adjusted kernels and the forward/backward
noise terms for unadjusted Langevin or HMC steps. Self-normalised, the weights turn averages
over samples into consistent estimates under ``exp(-u_X)``, whatever the intermediate
energies; good intermediate energies keep the weights even (Kish ESS close to S).

Intermediate energies, ``intermediate=``:

* ``"interpolate"`` (cheap, as published): ``u_j(y) = (1 - lam) u_Z(y) + lam u_X(y)``
  evaluated on the intermediate variable itself, as though it already were data.
* ``"pullback"`` (principled, one flow pass per energy): the flow's own density at that layer
  interpolated with the target pulled back through the remaining layers,
  ``u_j(y) = (1 - lam) [-log q_j(y)] + lam [u_X(f(y)) - log|det df/dy|]``.

Example:
    >>> import torch
    >>> from snfseq.flows import build_flow
    >>> from snfseq.energy import Gaussian
    >>> flow = build_flow("realnvp", features=2, context=0, transforms=3, hidden=(8,))
    >>> result = sample(flow, Gaussian(torch.tensor([1.0, -1.0])), Refinement(), num_samples=64)
    >>> result.samples.shape, result.log_weights.shape
    (torch.Size([64, 2]), torch.Size([64]))
"""

from __future__ import annotations

__all__ = ["Refinement", "RefinementResult", "SNFSample", "Trace", "sample"]

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from snfseq import energy as energies
from snfseq import kernels
from snfseq.flows import ConditionalFlow
from snfseq.forecast import kish_ess

KernelName = Literal["rwm", "mala", "hmc"]
_KERNELS = {
    "rwm": kernels.RandomWalkMetropolis,
    "mala": kernels.MALA,
    "hmc": kernels.HMC,
}


@dataclass
class Trace:
    """States, energies and accept flags of every refinement block and step.

    Shapes (``N`` = sampled rows, e.g. ``S x B`` flattened, or ``[S, B]`` via
    ``batch_shape``; a leading time axis ``H`` when stacked over forecast steps):

    * ``states: Tensor[(H,) J, M, *N, D]`` after each of the ``M`` steps of each of ``J`` blocks,
    * ``energies: Tensor[(H,) J, M, *N]``, ``accepted: Tensor[(H,) J, M, *N]`` (bool),
    * ``blocks: list[int]`` the sampling step after which each block ran,
    * ``lam: Tensor[J]``, ``step_size: Tensor[J]``.
    """

    states: Tensor
    energies: Tensor
    accepted: Tensor
    blocks: list[int]
    lam: Tensor
    step_size: Tensor
    has_time: bool = False

    @staticmethod
    def stack(traces: Sequence[Trace]) -> Trace:
        """Stacks per-step traces on a new leading time axis."""
        first = traces[0]
        return Trace(
            states=torch.stack([t.states for t in traces]),
            energies=torch.stack([t.energies for t in traces]),
            accepted=torch.stack([t.accepted for t in traces]),
            blocks=first.blocks,
            lam=first.lam,
            step_size=first.step_size,
            has_time=True,
        )

    @property
    def acceptance(self) -> Tensor:
        """Acceptance rate per block ``Tensor[J]`` (averaged over everything else)."""
        flags = self.accepted.float()
        if self.has_time:
            flags = flags.movedim(1, 0)
        return flags.reshape(flags.shape[0], -1).mean(1)


@dataclass
class RefinementResult:
    """One refined draw: ``y: Tensor[N, D]``, ``log_weight: Tensor[N]``, optional trace."""

    y: Tensor
    log_weight: Tensor
    trace: Trace | None = None


@dataclass
class Refinement:
    """Where and how MCMC blocks run between flow layers.

    Arguments:
        kernel: ``"rwm"`` (random-walk Metropolis), ``"mala"`` or ``"hmc"``.
        step_size: Kernel step size: one for all blocks, or one per block.
        steps: Kernel transitions per block.
        after: Sampling steps (0-based: 0 is the first layer applied to the noise) after which
            a block runs; None runs one after every layer.
        lam: ``"linear"`` (``j / (J - 1)`` for block ``j`` of ``J``; 1 for a single block) or a
            list with one value per block.
        target: ``"gaussian"``: ``|y - yhat|^2 / (2 target_scale^2)`` around the trained point
            head; ``"paper"``: the published ``|y - yhat|^2`` (data term of
            :func:`snfseq.energy.paper_energy`); or any callable ``yhat -> Energy`` building a
            target from the point prediction ``yhat: Tensor[N, D]`` (in the flow's standardised
            space), e.g. ``lambda yhat: Gaussian(yhat, 0.5) + 0.1 * StandardNormal()``.
            :func:`sample` takes any energy instead.
        target_scale: Scale of the ``"gaussian"`` target, in the flow's standardised units.
        intermediate: ``"interpolate"`` or ``"pullback"`` (see the module docstring).
        adjusted: For MALA/HMC: Metropolis-adjust (exact blocks) or not (the path weight
            corrects instead).
        num_leapfrog: Leapfrog steps per HMC transition.
        faithful: Reproduce the published code's quirks, for side-by-side comparison ONLY:
            accept/reject drawn per coordinate against the shared energy (not a valid
            Metropolis kernel) and every sample's recurrent state fed the sample mean. Path
            weights are meaningless then and are not reported.

    Example:
        >>> r = Refinement.paper()
        >>> r.kernel, r.steps, r.step_size, r.lambdas(5).tolist()
        ('rwm', 2, 0.35, [0.0, 0.25, 0.5, 0.75, 1.0])
    """

    kernel: KernelName = "mala"
    step_size: float | Sequence[float] = 0.05
    steps: int = 2
    after: Sequence[int] | None = None
    lam: Literal["linear"] | Sequence[float] = "linear"
    target: Literal["gaussian", "paper"] | Callable[[Tensor], energies.Energy] = "gaussian"
    target_scale: float = 1.0
    intermediate: Literal["interpolate", "pullback"] = "interpolate"
    adjusted: bool = True
    num_leapfrog: int = 5
    faithful: bool = False

    def __post_init__(self) -> None:
        if self.kernel not in _KERNELS:
            raise ValueError(f"kernel must be one of {sorted(_KERNELS)}, got {self.kernel!r}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if not callable(self.target) and self.target not in ("gaussian", "paper"):
            raise ValueError(
                f"target must be 'gaussian', 'paper' or a callable yhat -> Energy, "
                f"got {self.target!r}"
            )
        if self.intermediate not in ("interpolate", "pullback"):
            raise ValueError(
                f"intermediate must be 'interpolate' or 'pullback', got {self.intermediate!r}"
            )
        if self.target_scale <= 0:
            raise ValueError(f"target_scale must be > 0, got {self.target_scale}")
        if self.faithful and self.kernel != "rwm":
            raise ValueError("faithful=True reproduces the published random-walk code only")

    @classmethod
    def paper(cls, faithful: bool = False) -> Refinement:
        """The published GRU-SNF configuration.

        Random-walk Metropolis after each of the flow's layers, 2 proposals of step 0.35,
        lambda linear from 0 to 1, energy ``(1 - lam) |y|^2 / 2 + lam |yhat - y|^2``.
        ``faithful=True`` also reproduces the published code's per-coordinate accept and
        mean-fed recurrent state (for comparison only; see the class docstring).
        """
        return cls(
            kernel="rwm",
            step_size=0.35,
            steps=2,
            lam="linear",
            target="paper",
            intermediate="interpolate",
            faithful=faithful,
        )

    @property
    def feedback(self) -> Literal["sample", "mean"]:
        """What the recurrent state is fed: each sample's own frame, or (faithful) the mean."""
        return "mean" if self.faithful else "sample"

    @property
    def reports_weights(self) -> bool:
        return not self.faithful

    def blocks(self, num_layers: int) -> list[int]:
        """Sampling steps after which a block runs."""
        after = list(range(num_layers)) if self.after is None else sorted(set(self.after))
        bad = [k for k in after if not 0 <= k < num_layers]
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

    def target_energy(self, yhat: Tensor) -> energies.Energy:
        """The target ``u_X`` around a point prediction ``yhat: Tensor[N, D]``."""
        if callable(self.target):
            return energies.as_energy(self.target(yhat))
        if self.target == "paper":
            return energies.SquaredDistance(yhat)
        return energies.Gaussian(yhat, self.target_scale)

    def make_kernel(self) -> Any:
        """A fresh kernel instance (fixed step sizes; the blocks pass theirs per call)."""
        options: dict[str, Any] = {"adapt_step_size": False}
        if self.kernel in ("mala", "hmc"):
            options["adjusted"] = self.adjusted
        if self.kernel == "hmc":
            options["num_steps"] = self.num_leapfrog
        return _KERNELS[self.kernel](step_size=0.1, **options)

    # ------------------------------------------------------------------ the sampler

    def run(
        self,
        flow: ConditionalFlow,
        z: Tensor,
        c: Tensor | None,
        *,
        yhat: Tensor | None = None,
        target: energies.Energy | None = None,
        batch_shape: Sequence[int] | None = None,
        record: bool = False,
    ) -> RefinementResult:
        """Pushes base noise ``z: Tensor[N, D]`` through the flow with MCMC blocks.

        Arguments:
            flow: The flow to sample.
            z: Base noise ``Tensor[N, D]``.
            c: Context ``Tensor[N, C]`` (None for unconditional flows).
            yhat: Point prediction ``Tensor[N, D]`` that defines the configured target.
            target: A target energy to use instead of the configured one.
            batch_shape: How ``N`` splits (e.g. ``(S, B)``) in the recorded trace.
            record: Keep a :class:`Trace`.
        """
        if target is None:
            if yhat is None:
                raise ValueError("give either yhat (for the configured target) or target")
            target = self.target_energy(yhat)
        base = energies.StandardNormal()
        blocks = self.blocks(flow.num_layers)
        # Plain floats: they are configuration, and tensors would cost a conversion per call.
        lambdas = self.lambdas(len(blocks)).tolist()
        sizes = self.step_sizes(len(blocks)).tolist()
        kernel = None if self.faithful else self.make_kernel()
        log_weight = base(z)
        states: list[Tensor] = []
        energy_record: list[Tensor] = []
        accept_record: list[Tensor] = []
        block_of = {k: j for j, k in enumerate(blocks)}

        y = z
        for k in range(flow.num_layers):
            y, ladj = flow.inverse_layer(k, y, c)
            log_weight = log_weight + ladj
            j = block_of.get(k)
            if j is None:
                continue
            block_energy = self.block_energy(flow, k, c, target, lambdas[j])
            current_energy = None
            for _ in range(self.steps):
                if kernel is None:
                    y, current_energy, accepted = _faithful_rwm(
                        y, block_energy, sizes[j], current_energy
                    )
                    step_weight = torch.zeros_like(current_energy)
                else:
                    move = kernel.transition(
                        y, block_energy, step_size=sizes[j], energy=current_energy
                    )
                    y, current_energy, accepted = move.z, move.energy, move.accepted
                    step_weight = move.log_weight
                log_weight = log_weight + step_weight
                if record:
                    shape = tuple(batch_shape) if batch_shape is not None else y.shape[:-1]
                    states.append(y.reshape(*shape, y.shape[-1]))
                    energy_record.append(current_energy.reshape(shape))
                    accept_record.append(accepted.reshape(shape))
        log_weight = log_weight - target(y)
        trace = None
        if record and states:
            num_blocks, steps = len(blocks), self.steps
            trace = Trace(
                states=torch.stack(states).unflatten(0, (num_blocks, steps)),
                energies=torch.stack(energy_record).unflatten(0, (num_blocks, steps)),
                accepted=torch.stack(accept_record).unflatten(0, (num_blocks, steps)),
                blocks=blocks,
                lam=torch.tensor(lambdas),
                step_size=torch.tensor(sizes),
            )
        return RefinementResult(y=y, log_weight=log_weight, trace=trace)

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
        ``(1 - lam) |y|^2 / 2 + lam |yhat - y|^2``.
        """
        base = energies.StandardNormal()
        if self.intermediate == "interpolate":
            return energies.Interpolated(base, target, lam)
        own = energies.PullBack(base, lambda y: flow.partial_inverse(y, k, c))
        pulled = energies.PullBack(target, lambda y: flow.partial_forward(y, k, c))
        return energies.Interpolated(own, pulled, lam)


def _faithful_rwm(
    y: Tensor, energy: energies.Energy, step_size: float, current: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """The published code's random walk: per-COORDINATE accept against a shared energy.

    Not a valid Metropolis kernel (it does not leave ``exp(-energy)`` invariant); kept only to
    reproduce the published numbers. Random draws: proposal noise ``randn(N, D)``, then
    ``rand(N, D)``.
    """
    if current is None:
        current = energy(y)
    proposal = y + step_size * torch.randn_like(y)
    proposed = energy(proposal)
    log_ratio = (current - proposed).unsqueeze(-1)
    accept = torch.rand_like(y).log() < log_ratio
    y = torch.where(accept, proposal, y)
    return y, energy(y), accept.all(-1)


@dataclass
class SNFSample:
    """Output of :func:`sample`: ``samples: Tensor[S, *B, D]``, ``log_weights: Tensor[S, *B]``."""

    samples: Tensor
    log_weights: Tensor
    trace: Trace | None = None

    @property
    def weights(self) -> Tensor:
        """Self-normalised importance weights over the sample axis."""
        return torch.softmax(self.log_weights, dim=0)

    @property
    def ess(self) -> Tensor:
        """Kish effective sample size ``Tensor[*B]``."""
        return kish_ess(self.log_weights)

    def expectation(self, fn: Any = None) -> Tensor:
        """Self-normalised importance estimate of ``E[fn(x)]`` (``fn`` default: identity)."""
        values = self.samples if fn is None else fn(self.samples)
        weights = self.weights
        while weights.dim() < values.dim():
            weights = weights.unsqueeze(-1)
        return (weights * values).sum(0)


@torch.no_grad()
def sample(
    flow: ConditionalFlow | Any,
    target: energies.Energy | Any,
    refinement: Refinement | None,
    num_samples: int,
    context: Tensor | None = None,
    *,
    record: bool = False,
) -> SNFSample:
    """Samples any flow with stochastic refinement towards any target energy.

    Arguments:
        flow: A :class:`~snfseq.flows.ConditionalFlow` or a zuko flow with a standard-normal
            base (wrapped with :meth:`~snfseq.flows.ConditionalFlow.from_zuko`).
        target: Target energy ``u_X`` on the data space (an :class:`snfseq.energy.Energy` or a
            callable ``Tensor[..., D] -> Tensor[...]``).
        refinement: Where and how to refine; None samples the flow alone (the weights then
            still correct towards the target).
        num_samples: Samples ``S`` (per context row).
        context: ``Tensor[B, C]`` for a conditional flow; samples are then ``[S, B, D]``.
        record: Keep a :class:`Trace`.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if not isinstance(flow, ConditionalFlow):
        features = int(flow.base().event_shape[-1])
        context_features = 0 if context is None else int(context.shape[-1])
        flow = ConditionalFlow.from_zuko(flow, features, context_features)
    target = energies.as_energy(target)
    parameter = next(flow.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    if context is None:
        batch_shape: tuple[int, ...] = (num_samples,)
        c = None
    else:
        if context.dim() != 2:
            raise ValueError(f"context must be Tensor[B, C], got shape {tuple(context.shape)}")
        batch_shape = (num_samples, context.shape[0])
        c = context.to(device).repeat(num_samples, 1)
    rows = int(torch.tensor(batch_shape).prod())
    z = torch.randn(rows, flow.features, device=device)
    refinement = refinement if refinement is not None else Refinement(after=[])
    result = refinement.run(flow, z, c, target=target, batch_shape=batch_shape, record=record)
    return SNFSample(
        samples=result.y.reshape(*batch_shape, flow.features),
        log_weights=result.log_weight.reshape(batch_shape),
        trace=result.trace,
    )
