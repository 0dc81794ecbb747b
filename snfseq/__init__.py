"""snfseq: sequence normalizing flows with stochastic (MCMC) refinement at inference time.

Example:
    >>> import snfseq
    >>> from snfseq import SequenceFlow, Forecast, Refinement
    >>> Refinement.paper().kernel
    'rwm'
"""

from snfseq import energy, flows, forecasting, kernels, snf, weights  # noqa: E402
from snfseq.forecast import Forecast  # noqa: E402
from snfseq.forecasting import FlowForecaster  # noqa: E402
from snfseq.model import SequenceFlow  # noqa: E402
from snfseq.snf import Refinement  # noqa: E402
from snfseq.version import __version__  # noqa: E402

__all__ = [
    "FlowForecaster",
    "Forecast",
    "Refinement",
    "SequenceFlow",
    "__version__",
    "data",
    "diagnostics",
    "energy",
    "flows",
    "forecasting",
    "kernels",
    "landmarks",
    "metrics",
    "motion",
    "plots",
    "snf",
    "weights",
]


def __getattr__(name: str) -> object:
    # These import heavier packages (mediapipe, arviz, matplotlib): load them on first use.
    if name in ("data", "diagnostics", "landmarks", "metrics", "motion", "plots"):
        import importlib

        module = importlib.import_module(f"snfseq.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'snfseq' has no attribute {name!r}")
