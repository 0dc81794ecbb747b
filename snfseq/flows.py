"""The sequence-flow family: conditional flows exposed as an ordered list of invertible layers.

A :class:`ConditionalFlow` maps data ``x`` to a standard-normal latent ``z`` through ``K`` layers
``f_{K-1} o ... o f_0`` (zuko's convention: each layer goes data -> latent). Sampling runs the
inverses in the opposite order, ``z = y_0 -> y_1 -> ... -> y_K = x``, and can stop after any
layer: that is where the stochastic (MCMC) refinement of :mod:`snfseq.snf` runs.

Layers come from zuko (affine or spline coupling, MAF, NSF) or from Pyro conditional transforms
(:class:`PyroLayer`). Every layer reports its log-det in both directions.

Example:
    >>> import torch
    >>> flow = build_flow("realnvp", features=4, condition_features=3, transforms=2, hidden=(16,))
    >>> x, c = torch.randn(5, 4), torch.randn(5, 3)
    >>> flow.log_prob(x, c).shape
    torch.Size([5])
    >>> z = torch.randn(5, 4)
    >>> flow.sample_from(z, c)[0].shape
    torch.Size([5, 4])
"""

from __future__ import annotations

__all__ = [
    "FLOW_KINDS",
    "ClippedCoupling",
    "ConditionalFlow",
    "PyroLayer",
    "build_flow",
]

import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
import zuko
from pyro.distributions.transforms import Permute, conditional_affine_coupling
from torch import Tensor, nn
from torch.distributions import ComposeTransform, Transform
from zuko.flows import GeneralCouplingTransform, LazyTransform
from zuko.transforms import AutoregressiveTransform, CouplingTransform, MonotonicRQSTransform

from snfseq.energy import LOG_2PI
from snfseq.jacobi import jacobi_inverse

FLOW_KINDS = ("realnvp", "spline-coupling", "maf", "nsf", "pyro-coupling")


class ClippedCoupling(GeneralCouplingTransform):
    """A zuko coupling layer whose conditioner sees soft-clipped inputs.

    The conditioner MLP extrapolates wildly outside the range it was trained on, and its
    log-scales compound over layers: one out-of-range frame can map to a latent of size 1e4
    and a log-density of -1e6. Soft-clipping the conditioner's inputs to about ``clip``
    (``x / (1 + |x| / clip)``) keeps shifts and scales in their trained range, so the
    transformed half stays affine in its input and the density has Gaussian-like tails.

    Args:
        clip: Soft bound on the conditioner's inputs (in the flow's standardised units).
        *args: As :class:`zuko.flows.GeneralCouplingTransform`.
        **kwargs: As :class:`zuko.flows.GeneralCouplingTransform`.

    Example:
        >>> import torch
        >>> mask = torch.tensor([True, False, True, False])  # True: passed through unchanged
        >>> layer = ClippedCoupling(features=4, context=2, mask=mask, hidden_features=(8,))
        >>> t = layer(torch.randn(5, 2))  # the transform for 5 condition rows
        >>> x = torch.randn(5, 4)
        >>> y = t(x)
        >>> bool(torch.equal(y[:, mask], x[:, mask])), bool(torch.allclose(t.inv(y), x, atol=1e-5))
        (True, True)
    """

    def __init__(self, *args: Any, clip: float = 5.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clip = float(clip)
        # zuko finds the split with mask.nonzero() at every call: a host sync on a GPU, which
        # also forbids capturing the step as a CUDA graph. Found once here.
        self.register_buffer("idx_a", self.mask.nonzero().squeeze(-1), persistent=False)
        self.register_buffer("idx_b", (~self.mask).nonzero().squeeze(-1), persistent=False)

    def meta(self, c: Tensor | None, x: Tensor) -> Transform:
        return super().meta(c, x / (1 + x.abs() / self.clip))

    def forward(self, c: Tensor | None = None) -> Transform:
        return _SplitCoupling(partial(self.meta, c), self.idx_a, self.idx_b)


class _SplitCoupling(CouplingTransform):
    """zuko's coupling transform, given its split indices instead of a mask."""

    def __init__(self, meta: Callable[[Tensor], Transform], idx_a: Tensor, idx_b: Tensor) -> None:
        super(CouplingTransform, self).__init__()  # what CouplingTransform's own does
        self.meta, self.idx_a, self.idx_b = meta, idx_a, idx_b


class PyroLayer(LazyTransform):
    """Adapts a Pyro (conditional) transform to a zuko lazy layer, data -> latent.

    Pyro transforms map base noise to data; a flow layer here maps data to noise, so the layer is
    the inverse of the Pyro transform.

    Args:
        transforms: Pyro ``ConditionalTransformModule``s (conditioned on the condition vector
            each call) or plain ``torch.distributions.Transform``s (condition ignored),
            composed in the order given (base -> data) into one layer. Those that are
            ``nn.Module``s are registered.

    Example:
        >>> import torch
        >>> from pyro.distributions.transforms import conditional_affine_coupling
        >>> layer = PyroLayer(conditional_affine_coupling(4, context_dim=3, hidden_dims=[8]))
        >>> t = layer(torch.randn(2, 3))
        >>> t.call_and_ladj(torch.randn(2, 4))[1].shape
        torch.Size([2])
    """

    def __init__(self, *transforms: Transform | nn.Module) -> None:
        super().__init__()
        if not transforms:
            raise ValueError("PyroLayer needs at least one transform")
        self.modules_ = nn.ModuleList(t for t in transforms if isinstance(t, nn.Module))
        self.pyro_transforms = transforms

    def forward(self, c: Tensor | None = None) -> Transform:
        parts = []
        for transform in self.pyro_transforms:
            if hasattr(transform, "condition"):
                if c is None:
                    raise ValueError(
                        "this Pyro layer is conditional: a condition tensor is required"
                    )
                transform = transform.condition(c)  # type: ignore[operator]
            parts.append(transform)
        composed = parts[0] if len(parts) == 1 else ComposeTransform(parts)
        return _PyroInverse(composed)


class _PyroInverse(Transform):
    """The inverse of a Pyro transform, with a per-event log-det."""

    bijective = True

    def __init__(self, base: Transform) -> None:
        super().__init__()
        self.base = base
        self.domain = base.codomain
        self.codomain = base.domain

    def _call(self, x: Tensor) -> Tensor:
        return self.base.inv(x)

    def _inverse(self, y: Tensor) -> Tensor:
        return self.base(y)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return -_event_sum(self.base.log_abs_det_jacobian(y, x), x)

    @property
    def inv(self) -> Transform:  # type: ignore[override]
        return _PyroForward(self.base)


class _PyroForward(Transform):
    bijective = True

    def __init__(self, base: Transform) -> None:
        super().__init__()
        self.base = base
        self.domain = base.domain
        self.codomain = base.codomain

    def _call(self, x: Tensor) -> Tensor:
        return self.base(x)

    def _inverse(self, y: Tensor) -> Tensor:
        return self.base.inv(y)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return _event_sum(self.base.log_abs_det_jacobian(x, y), x)


def _event_sum(ladj: Tensor, x: Tensor) -> Tensor:
    # Elementwise Pyro transforms return a log-det per coordinate; flows here want one per event.
    return ladj.sum(-1) if ladj.dim() == x.dim() else ladj


class ConditionalFlow(nn.Module):
    """A conditional normalizing flow with a standard-normal base, as an ordered list of layers.

    Args:
        layers: Lazy transforms in zuko's order (each maps data -> latent; ``layers[0]`` touches
            the data). ``zuko.flows.Flow(...).transform.transforms`` is such a list.
        features: Number of data features ``D``.
        condition_features: Size ``C`` of the condition vector ``c`` (0 for an unconditional
            flow; zuko calls it ``context``).

    Shapes: ``x, z: Tensor[..., D]``, ``c: Tensor[..., C]`` broadcastable to the same batch shape;
    log-densities and log-dets are ``Tensor[...]``.

    Example:
        >>> import torch
        >>> nice = zuko.flows.NICE(3, 2, transforms=2)  # D = 3 features, C = 2
        >>> flow = ConditionalFlow(nice.transform.transforms, 3, 2)
        >>> x, c = torch.randn(4, 3), torch.randn(4, 2)
        >>> z, ladj = flow(x, c)  # data -> latent
        >>> back, _ = flow.sample_from(z, c)  # latent -> data, through the inverses
        >>> flow.num_layers, bool(torch.allclose(back, x, atol=1e-5))
        (2, True)
    """

    def __init__(
        self, layers: Sequence[LazyTransform], features: int, condition_features: int = 0
    ) -> None:
        super().__init__()
        if len(layers) == 0:
            raise ValueError("a flow needs at least one layer")
        self.layers = nn.ModuleList(layers)
        self.features = int(features)
        self.condition_features = int(condition_features)
        #: Autoregressive layers (MAF, NSF) sample by Jacobi sweeps that stop once no
        #: coordinate moves by more than this (:func:`snfseq.jacobi.jacobi_inverse`); 0 runs
        #: every sweep, the exact sequential inverse.
        self.inverse_tolerance = 1e-5

    @classmethod
    def from_zuko(
        cls, flow: zuko.flows.Flow, features: int, condition_features: int = 0
    ) -> ConditionalFlow:
        """Wraps a zuko flow whose base is a standard normal (true of zuko's built-in flows).

        Example:
            >>> f = ConditionalFlow.from_zuko(zuko.flows.NICE(3, 2, transforms=2), 3, 2)
            >>> f.num_layers
            2
        """
        base = flow.base()
        inner = getattr(base, "base_dist", base)
        loc = getattr(inner, "loc", None)
        scale = getattr(inner, "scale", None)
        if loc is None or scale is None or bool((loc != 0).any()) or bool((scale != 1).any()):
            raise ValueError("only flows with a standard-normal base can be wrapped")
        transform = flow.transform
        layers = list(getattr(transform, "transforms", [transform]))
        return cls(layers, features, condition_features)

    @property
    def num_layers(self) -> int:
        """Number of invertible layers ``K``."""
        return len(self.layers)

    def forward(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Data to latent: ``(z, log|det dz/dx|)``."""
        ladj = x.new_zeros(x.shape[:-1])
        for layer in self.layers:
            x, step = layer(c).call_and_ladj(x)
            ladj = ladj + step
        return x, ladj

    def log_prob(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        """Log-density ``log p(x | c)``: ``Tensor[...]``."""
        z, ladj = self(x, c)
        return base_log_prob(z) + ladj

    def inverse_layer(self, k: int, y: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Applies sampling step ``k`` (0 acts on the noise): ``(y_next, log|det dy_next/dy|)``.

        Sampling step ``k`` is the inverse of ``layers[K - 1 - k]``.
        """
        transform = self.layers[self.num_layers - 1 - k](c)
        if isinstance(transform, CouplingTransform):
            # zuko's generic inverse evaluates the conditioner twice (once for the value, once
            # for the log-det); a coupling layer needs it once.
            y_a, y_b = transform.split(y)
            x_b, ladj = transform.meta(y_a).inv.call_and_ladj(y_b)
            return transform.merge(y_a, x_b, y.shape), ladj
        if isinstance(transform, AutoregressiveTransform):
            x, ladj, _ = jacobi_inverse(transform, y, self.inverse_tolerance)
            return x, ladj
        return transform.inv.call_and_ladj(y)

    def sample_from(
        self,
        z: Tensor,
        c: Tensor | None = None,
        hook: Callable[[int, Tensor], Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Pushes base noise through every layer: ``(x, log|det dx/dz|)``.

        Args:
            z: Base noise ``Tensor[..., D]``.
            c: Context ``Tensor[..., C]``.
            hook: Called as ``hook(k, y)`` after sampling step ``k``; returns the (possibly
                refined) ``y`` that the next layer receives.
        """
        ladj = z.new_zeros(z.shape[:-1])
        y = z
        for k in range(self.num_layers):
            y, step = self.inverse_layer(k, y, c)
            ladj = ladj + step
            if hook is not None:
                y = hook(k, y)
        return y, ladj

    def partial_forward(
        self, y: Tensor, after: int, c: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Maps ``y`` (the value after sampling step ``after``) on to data: ``(x, log|det dx/dy|)``.

        Used to pull the data-space target back to an intermediate layer.
        """
        ladj = y.new_zeros(y.shape[:-1])
        for k in range(after + 1, self.num_layers):
            y, step = self.inverse_layer(k, y, c)
            ladj = ladj + step
        return y, ladj

    def partial_inverse(
        self, y: Tensor, upto: int, c: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Maps ``y`` (the value after sampling step ``upto``) back to base noise.

        Returns ``(z, log|det dz/dy|)``; with it, ``-log q(y) = |z|^2 / 2 - log|det dz/dy|``
        (+ const) is the flow's own energy at that layer.
        """
        ladj = y.new_zeros(y.shape[:-1])
        for k in range(upto, -1, -1):
            y, step = self.layers[self.num_layers - 1 - k](c).call_and_ladj(y)
            ladj = ladj + step
        return y, ladj


def base_log_prob(z: Tensor) -> Tensor:
    """Standard-normal log-density summed over the last axis."""
    return -0.5 * (z.square().sum(-1) + z.shape[-1] * LOG_2PI)


def build_flow(
    kind: str,
    features: int,
    condition_features: int = 0,
    transforms: int = 5,
    hidden: Sequence[int] = (512, 512, 512),
    bins: int = 8,
    *,
    context: int | None = None,
) -> ConditionalFlow:
    """Builds a conditional flow of the sequence-flow family.

    Args:
        kind: ``"realnvp"`` (affine coupling, alternating masks; fast to sample, the default of
            :class:`snfseq.SequenceFlow`; conditioner inputs soft-clipped, see
            :class:`ClippedCoupling`), ``"spline-coupling"`` (rational-quadratic spline
            coupling), ``"maf"`` and ``"nsf"`` (autoregressive: exact density, but sampling
            inverts one dimension at a time), ``"pyro-coupling"`` (Pyro's conditional affine
            coupling with permutations, through :class:`PyroLayer`).
        features: Data features ``D`` (at least 2 for coupling flows, 1 for ``maf``/``nsf``).
        condition_features: Size ``C`` of the condition vector (0: unconditional).
        transforms: Number of layers ``K``.
        hidden: Hidden widths of each layer's conditioner MLP.
        bins: Spline bins (spline kinds only).
        context: Former name of ``condition_features`` (deprecated: in snfseq "context"
            means the observed frames).

    Example:
        >>> [build_flow(k, 4, 2, transforms=2, hidden=(8,)).num_layers for k in FLOW_KINDS]
        [2, 2, 2, 2, 2]
    """
    if context is not None:
        warnings.warn(
            "build_flow(context=...) is now condition_features=...", DeprecationWarning, 2
        )
        condition_features = context
    if features < 1 or (features < 2 and kind not in ("maf", "nsf")):
        raise ValueError(
            f"flow {kind!r} needs at least 2 features, got {features} "
            "(the autoregressive 'maf' and 'nsf' model one)"
        )
    if transforms < 1:
        raise ValueError(f"transforms must be >= 1, got {transforms}")
    hidden = tuple(int(h) for h in hidden)
    layers: list[LazyTransform]
    if kind in ("realnvp", "spline-coupling"):
        extra = {}
        if kind == "spline-coupling":
            extra = {
                "univariate": MonotonicRQSTransform,
                "shapes": [(bins,), (bins,), (bins - 1,)],
            }
        layers = [
            ClippedCoupling(
                features=features,
                context=condition_features,
                mask=torch.arange(features) % 2 == i % 2,
                hidden_features=hidden,
                **extra,
            )
            for i in range(transforms)
        ]
    elif kind == "maf":
        zflow = zuko.flows.MAF(
            features, condition_features, transforms=transforms, hidden_features=hidden
        )
        return ConditionalFlow.from_zuko(zflow, features, condition_features)
    elif kind == "nsf":
        zflow = zuko.flows.NSF(
            features, condition_features, transforms=transforms, bins=bins, hidden_features=hidden
        )
        return ConditionalFlow.from_zuko(zflow, features, condition_features)
    elif kind == "pyro-coupling":
        # Pyro's coupling keeps the first half fixed; a fixed reversal after each coupling
        # alternates the halves (fixed, so checkpoints round-trip without storing it).
        reverse = Permute(torch.arange(features - 1, -1, -1))
        layers = [
            PyroLayer(
                conditional_affine_coupling(features, condition_features, hidden_dims=list(hidden)),
                reverse,
            )
            for _ in range(transforms)
        ]
    else:
        raise ValueError(f"unknown flow kind {kind!r}; expected one of {FLOW_KINDS}")
    return ConditionalFlow(layers, features, condition_features)
