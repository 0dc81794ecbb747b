"""Refined sampling of any flow towards any target energy (outside forecasting).

Example:
    >>> import torch
    >>> from snfseq.energy import Gaussian
    >>> from snfseq.flows import build_flow
    >>> flow = build_flow("realnvp", features=2, transforms=3, hidden=(8,))
    >>> result = sample(flow, Gaussian(torch.tensor([1.0, -1.0])), Refinement(), num_samples=64)
    >>> result.samples.shape, result.log_weights.shape
    (torch.Size([64, 2]), torch.Size([64]))
"""

from __future__ import annotations

__all__ = ["SNFSample", "sample"]

import math
import warnings
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
        ancestors: ``Tensor[S, *B]`` (long): the sample each one descends from when a
            refinement with ``resample`` resampled between blocks; None otherwise.

    Example:
        >>> import torch
        >>> draws = SNFSample(torch.tensor([[0.0], [2.0]]), torch.tensor([3.0, 1.0]).log())
        >>> draws.expectation(), draws.ess  # weights 3/4 and 1/4
        (tensor([0.5000]), tensor(1.6000))
    """

    samples: Tensor
    log_weights: Tensor | None
    trace: Trace | None = None
    ancestors: Tensor | None = None


@torch.no_grad()
def sample(
    flow: ConditionalFlow | Any,
    target: energies.EnergyLike,
    refinement: Refinement | None,
    num_samples: int,
    condition: Tensor | None = None,
    *,
    record: bool = False,
    context: Tensor | None = None,
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
        condition: ``Tensor[B, C]`` for a conditional flow; samples are then ``[S, B, D]``.
        record: Keep a :class:`~snfseq.snf.Trace`.
        context: Former name of ``condition`` (deprecated: in snfseq "context" means the
            observed frames).

    Returns:
        An :class:`SNFSample`.

    Example:
        >>> import torch
        >>> from snfseq.energy import StandardNormal
        >>> from snfseq.flows import build_flow
        >>> flow = build_flow("realnvp", 2, 3, transforms=2, hidden=(8,))  # D = 2, C = 3
        >>> out = sample(flow, StandardNormal(), None, num_samples=5, condition=torch.randn(4, 3))
        >>> out.samples.shape, out.log_weights.shape  # S = 5 samples for each of B = 4 rows
        (torch.Size([5, 4, 2]), torch.Size([5, 4]))
    """
    if context is not None:
        warnings.warn("snf.sample(context=...) is now condition=...", DeprecationWarning, 2)
        condition = context
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if not isinstance(flow, ConditionalFlow):
        features = int(flow.base().event_shape[-1])
        condition_features = 0 if condition is None else int(condition.shape[-1])
        flow = ConditionalFlow.from_zuko(flow, features, condition_features)
    parameter = next(flow.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    if condition is None:
        batch_shape: tuple[int, ...] = (num_samples,)
        c = None
    else:
        if condition.dim() != 2:
            raise ValueError(f"condition must be Tensor[B, C], got shape {tuple(condition.shape)}")
        batch_shape = (num_samples, condition.shape[0])
        c = condition.to(device).repeat(num_samples, 1)
    z = torch.randn(math.prod(batch_shape), flow.features, device=device)
    refinement = refinement if refinement is not None else Refinement(after=[])
    result = refinement.run(
        flow, z, c, target=target, batch_shape=batch_shape, record=record, resample_blocks=True
    )
    log_weights = None if result.log_weight is None else result.log_weight.reshape(batch_shape)
    ancestors = None
    if result.ancestors is not None:  # row s * B + b -> its sample s
        ancestors = (result.ancestors // math.prod(batch_shape[1:])).reshape(batch_shape)
    return SNFSample(
        samples=result.y.reshape(*batch_shape, flow.features),
        log_weights=log_weights,
        trace=result.trace,
        ancestors=ancestors,
    )
