"""The graphed forecast step (snfseq.graphs): the buffered step draws exactly what the
ordinary one draws (checked eagerly here; the CUDA capture itself is in tests/test_cuda.py)."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from snfseq import Refinement, SequenceFlow, snf
from snfseq.graphs import GraphedRollout


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = SequenceFlow(features=4, hidden=8, layers=2, transforms=2, flow_hidden=(8,))
    net.fit(torch.randn(32, 10, 4).cumsum(1), context=5, epochs=1, progress=False, device="cpu")
    return net.eval()


def rolled(model, refinement, feedback, graphed: bool, horizon: int = 3):
    context = torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(1)).cumsum(1)
    torch.manual_seed(7)
    with torch.no_grad():
        rollout = model._rollout(model._as_windows(context, "context", 1), 5, refinement, feedback)
        stepper = GraphedRollout(rollout, capture=False) if graphed else rollout
        for _ in range(horizon):
            stepper.step()
        return stepper.forecast()


@pytest.mark.parametrize("feedback", ["sample", "mean"])
@pytest.mark.parametrize("name", ["none", "mala", "hmc"])
def test_the_buffered_step_draws_what_the_ordinary_step_draws(model, name, feedback):
    refinement = {"none": None, "mala": Refinement(), "hmc": Refinement(kernel="hmc")}[name]
    plain = rolled(model, refinement, feedback, graphed=False)
    buffered = rolled(model, refinement, feedback, graphed=True)
    torch.testing.assert_close(buffered.samples, plain.samples, rtol=0, atol=0)
    if refinement is not None:
        torch.testing.assert_close(buffered.log_weights, plain.log_weights, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("refinement", "message"),
    [
        (Refinement(resample=0.5), "resample"),
        (Refinement(target=snf.Observations(torch.zeros(2, 3, 4), noise=0.1)), "target"),
    ],
)
def test_what_a_graph_cannot_hold_is_refused(model, refinement, message):
    rollout = model._rollout(torch.zeros(2, 5, 4), 3, refinement)
    with pytest.raises(ValueError, match=message):
        GraphedRollout(rollout, capture=False)
    with pytest.raises(ValueError, match="record"):
        GraphedRollout(model._rollout(torch.zeros(2, 5, 4), 3, Refinement(), record=True))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_capturing_needs_a_gpu(model):
    with pytest.raises(ValueError, match="CUDA device"):
        model.forecast(torch.zeros(5, 4), horizon=2, num_samples=3, cuda_graph=True)


class _Recorded(TorchDispatchMode):
    """Records the operators that make the host wait for a GPU."""

    SYNCING = {"aten.nonzero", "aten._local_scalar_dense", "aten.is_nonzero", "aten.masked_select"}

    def __init__(self) -> None:
        super().__init__()
        self.found: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if str(func.overloadpacket) in self.SYNCING:
            self.found.add(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", ["none", "paper", "mala", "hmc"])
def test_a_step_never_waits_for_the_device(model, name):
    """What a CUDA graph needs and a GPU step wants: no value read back to the host."""
    refinement = {
        "none": None,
        "paper": Refinement.paper(),
        "mala": Refinement(),
        "hmc": Refinement(kernel="hmc"),
    }[name]
    with torch.no_grad():
        rollout = model._rollout(torch.randn(2, 5, 4), 3, refinement)
        with _Recorded() as recorded:
            rollout.step()
    assert recorded.found == set()
