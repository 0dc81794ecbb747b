"""The flow family: invertibility, log-det against autograd, layer-by-layer sampling."""

from __future__ import annotations

import pytest
import torch
import zuko
from zuko.transforms import ComposedTransform

from snfseq.flows import FLOW_KINDS, ConditionalFlow, build_flow
from snfseq.jacobi import jacobi_inverse

D, C = 4, 3


def _flow(kind: str) -> ConditionalFlow:
    torch.manual_seed(0)
    return build_flow(
        kind, features=D, condition_features=C, transforms=3, hidden=(16, 16)
    ).double()


@pytest.mark.parametrize("kind", FLOW_KINDS)
def test_invertible_and_log_prob_consistent(kind: str) -> None:
    flow = _flow(kind)
    x, c = torch.randn(7, D, dtype=torch.float64), torch.randn(7, C, dtype=torch.float64)
    z, ladj_forward = flow(x, c)
    x_back, ladj_inverse = flow.sample_from(z, c)
    torch.testing.assert_close(x_back, x, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(ladj_inverse, -ladj_forward, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("kind", FLOW_KINDS)
def test_log_det_matches_autograd_jacobian(kind: str) -> None:
    flow = _flow(kind)
    c = torch.randn(C, dtype=torch.float64)
    for x in torch.randn(3, D, dtype=torch.float64):
        jacobian = torch.autograd.functional.jacobian(lambda v: flow(v, c)[0], x)
        _, ladj = flow(x, c)
        torch.testing.assert_close(ladj, torch.linalg.slogdet(jacobian)[1], atol=1e-8, rtol=1e-8)
        # Each sampling-direction layer on its own, too.
        y = torch.randn(D, dtype=torch.float64)
        for k in range(flow.num_layers):
            jac_k = torch.autograd.functional.jacobian(lambda v: flow.inverse_layer(k, v, c)[0], y)
            torch.testing.assert_close(
                flow.inverse_layer(k, y, c)[1], torch.linalg.slogdet(jac_k)[1], atol=1e-8, rtol=1e-8
            )


@pytest.mark.parametrize("kind", FLOW_KINDS)
def test_layer_by_layer_sampling_equals_the_flows_own(kind: str) -> None:
    flow = _flow(kind)
    z, c = torch.randn(9, D, dtype=torch.float64), torch.randn(9, C, dtype=torch.float64)
    own = ComposedTransform(*(layer(c) for layer in flow.layers))
    expected = own.inv(z)
    steps = []
    x, _ = flow.sample_from(z, c, hook=lambda k, y: steps.append(k) or y)
    torch.testing.assert_close(x, expected, atol=1e-8, rtol=1e-8)
    assert steps == list(range(flow.num_layers))
    # Stopping after any layer and finishing with partial_forward gives the same sample.
    for k in range(flow.num_layers):
        y = z
        for j in range(k + 1):
            y, _ = flow.inverse_layer(j, y, c)
        finished, _ = flow.partial_forward(y, k, c)
        torch.testing.assert_close(finished, expected, atol=1e-8, rtol=1e-8)
        back, ladj = flow.partial_inverse(y, k, c)
        torch.testing.assert_close(back, z, atol=1e-8, rtol=1e-8)
    # And the density matches zuko's own normalizing flow object.
    if kind in ("maf", "nsf"):
        reference = zuko.distributions.NormalizingFlow(
            own, zuko.distributions.DiagNormal(torch.zeros(D), torch.ones(D)).expand((9,))
        )
        torch.testing.assert_close(flow.log_prob(x, c), reference.log_prob(x).double())


def test_from_zuko_wraps_builtin_flows_and_rejects_other_bases() -> None:
    flow = ConditionalFlow.from_zuko(zuko.flows.RealNVP(3, 2, transforms=2), 3, 2)
    assert flow.num_layers == 2
    odd = zuko.flows.RealNVP(3, 2, transforms=2)
    odd.base.loc = torch.ones(3)
    with pytest.raises(ValueError, match="standard-normal base"):
        ConditionalFlow.from_zuko(odd, 3, 2)


def test_clipped_coupling_keeps_out_of_range_densities_gaussian_like() -> None:
    flow = _flow("realnvp")
    with torch.no_grad():
        for layer in flow.layers:
            layer.hyper[-1].weight.mul_(20.0)  # a sharp conditioner, as after long training
    c = torch.zeros(1, C, dtype=torch.float64)
    far = torch.full((1, D), 30.0, dtype=torch.float64)
    clipped = flow.log_prob(far, c).item()
    for layer in flow.layers:
        layer.clip = float("inf")  # the plain zuko coupling: x / (1 + |x| / inf) == x
    unclipped = flow.log_prob(far, c).item()
    assert (
        unclipped < 10 * clipped
    )  # both negative: unclipped is >10x more extreme (-5.8e4 vs -1.4e3)
    assert clipped > -1e5


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown flow kind"):
        build_flow("glow", 4, 2)
    with pytest.raises(ValueError, match="at least 2 features"):
        build_flow("realnvp", 1, 2)


@pytest.mark.parametrize("kind", ["maf", "nsf"])
def test_jacobi_sampling_equals_the_sequential_inverse(kind: str) -> None:
    """Autoregressive layers sample by Jacobi sweeps that stop early; the result must be the
    exact sequential inverse to the tolerance, and the sweeps must actually stop early."""
    torch.manual_seed(0)
    flow = build_flow(kind, features=12, condition_features=3, transforms=3, hidden=(32, 32))
    z, c = torch.randn(256, 12), torch.randn(256, 3)
    flow.inverse_tolerance = 0.0  # every sweep: zuko's sequential inverse
    exact, exact_ladj = flow.sample_from(z, c)
    flow.inverse_tolerance = 1e-6
    fast, fast_ladj = flow.sample_from(z, c)
    torch.testing.assert_close(fast, exact, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fast_ladj, exact_ladj, atol=1e-4, rtol=1e-4)
    back, _ = flow(fast, c)  # data -> latent recovers the noise
    torch.testing.assert_close(back, z, atol=1e-4, rtol=1e-4)
    layer = flow.layers[0](c)
    _, _, sweeps = jacobi_inverse(layer, exact, tolerance=1e-6)
    assert 1 < sweeps < 12, sweeps  # early, but not after a single sweep
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        jacobi_inverse(layer, exact, tolerance=-1.0)
