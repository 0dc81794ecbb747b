"""Refined sampling of any flow towards any target energy (outside forecasting).

Example:
    >>> import torch
    >>> from snfseq.energy import Gaussian
    >>> from snfseq.flows import build_flow
    >>> flow = build_flow("realnvp", features=2, context=0, transforms=3, hidden=(8,))
    >>> result = sample(flow, Gaussian(torch.tensor([1.0, -1.0])), Refinement(), num_samples=64)
    >>> result.samples.shape, result.log_weights.shape
    (torch.Size([64, 2]), torch.Size([64]))
"""

from __future__ import annotations

__all__ = ["SNFSample", "sample"]

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from snfseq import energy as energies
from snfseq.flows import ConditionalFlow
from snfseq.snf.chains import Trace
from snfseq.snf.refinement import Refinement
from snfseq.weights import Weighted


@dataclass
class SNFSample(Weighted):
    """Output of :func:`sample`.

    Attributes:
        samples: ``Tensor[S, *B, D]``.
        log_weights: ``Tensor[S, *B]`` path log-weights (None for a kernel without them).
        trace: The refinement's :class:`~snfseq.snf.Trace`, when recorded.
    """

    samples: Tensor
    log_weights: Tensor | None
    trace: Trace | None = None


@torch.no_grad()
def sample(
    flow: ConditionalFlow | Any,
    target: energies.EnergyLike,
    refinement: Refinement | None,
    num_samples: int,
    context: Tensor | None = None,
    *,
    record: bool = False,
) -> SNFSample:
    """Samples any flow with stochastic refinement towards any target energy.

    Args:
        flow: A :class:`~snfseq.flows.ConditionalFlow` or a zuko flow with a standard-normal
            base (wrapped with :meth:`~snfseq.flows.ConditionalFlow.from_zuko`).
        target: Target energy ``u_X`` on the data space (an :class:`snfseq.energy.Energy` or a
            callable ``Tensor[..., D] -> Tensor[...]``).
        refinement: Where and how to refine; None samples the flow alone (the weights then
            still correct towards the target).
        num_samples: Samples ``S`` (per condition row).
        context: Condition ``Tensor[B, C]`` for a conditional flow; samples are then
            ``[S, B, D]``.
        record: Keep a :class:`~snfseq.snf.Trace`.

    Returns:
        An :class:`SNFSample`.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if not isinstance(flow, ConditionalFlow):
        features = int(flow.base().event_shape[-1])
        context_features = 0 if context is None else int(context.shape[-1])
        flow = ConditionalFlow.from_zuko(flow, features, context_features)
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
    z = torch.randn(math.prod(batch_shape), flow.features, device=device)
    refinement = refinement if refinement is not None else Refinement(after=[])
    result = refinement.run(flow, z, c, target=target, batch_shape=batch_shape, record=record)
    log_weights = None if result.log_weight is None else result.log_weight.reshape(batch_shape)
    return SNFSample(
        samples=result.y.reshape(*batch_shape, flow.features),
        log_weights=log_weights,
        trace=result.trace,
    )
