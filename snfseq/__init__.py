"""snfseq: sequence normalizing flows with stochastic (MCMC) refinement at inference time.

Example:
    >>> import snfseq
    >>> from snfseq import SequenceFlow, Forecast, Refinement
    >>> Refinement.paper().kernel
    'rwm'
"""

from snfseq import energy, flows, kernels, snf  # noqa: E402
from snfseq.forecast import Forecast  # noqa: E402
from snfseq.model import SequenceFlow  # noqa: E402
from snfseq.snf import Refinement  # noqa: E402
from snfseq.version import __version__  # noqa: E402

__all__ = [
    "Forecast",
    "Refinement",
    "SequenceFlow",
    "__version__",
    "data",
    "diagnostics",
    "energy",
    "flows",
    "kernels",
    "metrics",
    "motion",
    "snf",
]


def __getattr__(name: str) -> object:
    # data, motion, metrics and diagnostics import heavier packages: load them on first use.
    if name in ("data", "motion", "metrics", "diagnostics"):
        import importlib

        module = importlib.import_module(f"snfseq.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'snfseq' has no attribute {name!r}")
