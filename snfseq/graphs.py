"""A forecast step captured once as a CUDA graph and replayed for every frame.

On a GPU, a refined step at ``S = 100`` is a few hundred small kernels, and launching them
from Python costs far more than running them. A CUDA graph (``torch.cuda.CUDAGraph``) records
the launches of one step once; each later frame is one ``replay()``. The step reads its
recurrent state, top-layer output and last frame from fixed buffers and writes the new ones
back into them, so replaying it rolls every path forward; random numbers come from the
graph-safe default CUDA generator, so a seeded forecast is reproducible.

What a graph cannot hold: work that depends on values (resampling decides on the host which
rows to copy), a step-dependent target (:class:`~snfseq.snf.Observations` reads the step
index), covariates (a different slice per step) and recorded traces. Those raise a
``ValueError``; use the ordinary forecast for them. Benchmarked in
``benchmarks/bench_gpu.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:  # a rollout is what it wraps, not what it builds on
    from .forecast import Forecast
    from .rollout import Rollout

__all__ = ["GraphedRollout"]


class GraphedRollout:
    """Wraps a :class:`~snfseq.rollout.Rollout` so that each :meth:`step` replays one
    captured CUDA graph (or, with ``capture=False``, runs the same buffered step eagerly).

    Args:
        rollout: A fresh rollout (no frames yet) on a CUDA device.
        capture: Capture a CUDA graph; False runs the buffered step eagerly (any device),
            which draws exactly what ``rollout.step()`` draws.
        warmup: Eager steps on a side stream before the capture (they initialise cuBLAS and
            the caching allocator; their draws are discarded and the buffers restored).

    Example:
        >>> import torch
        >>> from snfseq import SequenceFlow
        >>> from snfseq.rollout import Rollout
        >>> model = SequenceFlow(features=3, hidden=8, layers=1, transforms=2, flow_hidden=(8,))
        >>> _ = model.normalizer.fitted.fill_(True)
        >>> start = (torch.zeros(2, 3), torch.zeros(1, 2, 8), torch.zeros(2, 8), torch.zeros(2, 3))
        >>> with torch.no_grad():
        ...     graphed = GraphedRollout(Rollout(model.eval(), *start, 4), capture=False)
        ...     graphed.step(); graphed.step()
        >>> graphed.forecast().samples.shape
        torch.Size([4, 2, 2, 3])
    """

    def __init__(self, rollout: Rollout, *, capture: bool = True, warmup: int = 2) -> None:
        _check_graphable(rollout)
        if capture and rollout.loc.device.type != "cuda":
            raise ValueError(
                f"a CUDA graph needs a CUDA device, the model is on {rollout.loc.device}"
            )
        self.rollout = rollout
        self.state, self.h_top = _clone(rollout.state), rollout.h_top.clone()
        self.previous = rollout.previous.clone()
        self.frame: Tensor | None = None
        self.log_weight: Tensor | None = None
        self.graph: torch.cuda.CUDAGraph | None = None
        if capture:
            self._capture(warmup)

    def _advance(self) -> None:
        """One step from the buffers back into them; the frame (and its log-weight, for a
        weighted refinement) are left in :attr:`frame` and :attr:`log_weight`."""
        rollout = self.rollout
        rollout.state, rollout.h_top, rollout.previous = self.state, self.h_top, self.previous
        rollout.step()
        self.frame = rollout.frames.pop()
        if rollout.refinement is not None:
            rollout.ancestry.pop()
            self.log_weight = rollout.step_weights.pop() if rollout.step_weights else None
        _copy_into(self.state, rollout.state)
        self.h_top.copy_(rollout.h_top)
        self.previous.copy_(rollout.previous)

    def _capture(self, warmup: int) -> None:
        start = (_clone(self.state), self.h_top.clone(), self.previous.clone())
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                self._advance()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._advance()
        # Capturing runs nothing, but the warm-up steps moved the buffers.
        _copy_into(self.state, start[0])
        self.h_top.copy_(start[1])
        self.previous.copy_(start[2])

    def step(self, *, feed_back: bool = True) -> None:
        """Samples the next frame of every path and feeds it back (always: the captured step
        does; ``feed_back`` is taken for :class:`~snfseq.rollout.Rollout`'s signature)."""
        if self.graph is None:
            self._advance()
        else:
            self.graph.replay()
        assert self.frame is not None
        rollout = self.rollout
        rollout.frames.append(self.frame.clone())
        if self.log_weight is not None:
            rollout.step_weights.append(self.log_weight.clone())
        if rollout.refinement is not None:
            rollout.ancestry.append(rollout.identity)

    def forecast(self, feature_names: Sequence[str] | None = None) -> Forecast:
        """The paths so far as a :class:`~snfseq.Forecast` (see :meth:`Rollout.forecast`)."""
        return self.rollout.forecast(feature_names)


def _check_graphable(rollout: Rollout) -> None:
    refinement = rollout.refinement
    if rollout.frames:
        raise ValueError("a graphed rollout must start before its first frame")
    if rollout.covariates is not None:
        raise ValueError("a CUDA graph cannot hold covariates (a new slice every step)")
    if rollout.record:
        raise ValueError("a CUDA graph cannot record traces: set record_trace=False")
    if refinement is None:
        return
    if refinement.resample is not None:
        raise ValueError("a CUDA graph cannot resample (the host picks the copies): resample=None")
    if refinement.target not in ("gaussian", "paper"):
        raise ValueError("a CUDA graph needs the 'gaussian' or 'paper' target (no step index)")


def _clone(state: Any) -> Any:
    if isinstance(state, tuple):
        return tuple(_clone(s) for s in state)
    return state.clone()


def _copy_into(buffer: Any, values: Any) -> None:
    if isinstance(buffer, tuple):
        for b, v in zip(buffer, values, strict=True):
            _copy_into(b, v)
    else:
        buffer.copy_(values)
