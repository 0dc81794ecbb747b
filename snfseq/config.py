"""The hyperparameters of a :class:`snfseq.SequenceFlow`, declared once.

Example:
    >>> SequenceFlowConfig(features=20, hidden=32).layers
    3
"""

from __future__ import annotations

__all__ = ["SequenceFlowConfig"]

from dataclasses import dataclass
from typing import Literal

from snfseq.flows import FLOW_KINDS
from snfseq.validation import is_count


@dataclass
class SequenceFlowConfig:
    """The hyperparameters of a :class:`SequenceFlow`, declared once: the constructor takes
    them as keywords, checkpoints store them.

    Args:
        features: Features per frame ``D`` (e.g. keypoints x coordinates).
        hidden: Recurrent hidden size.
        layers: Recurrent layers.
        dropout: Dropout between recurrent layers (training only).
        cell: ``"gru"`` or ``"lstm"``.
        condition_size: Size of the condition vector ``c_t`` fed to every flow layer.
        flow: Flow kind, one of :data:`snfseq.flows.FLOW_KINDS` (``"realnvp"`` default).
        transforms: Number of flow layers.
        flow_hidden: Hidden widths of each flow layer's conditioner.
        residual: Model frame-to-frame changes (``x_t - x_{t-1}``) rather than frames.
        point_weight: Weight of the point head's squared error in the training loss.
        min_context: Fewest context frames a forecast accepts.
        encoder_input: ``"frames+deltas"`` feeds the encoder each normalised frame and its
            standardised change from the previous frame; ``"frames"`` feeds frames only (as
            published). Deltas are close to stationary where positions are not, which keeps
            the encoder in its trained range during large movements.
        covariates: Known-in-advance covariate channels ``K`` per frame (calendar features,
            weather or load forecasts...), read by the encoder and the condition but not
            forecast (:mod:`snfseq.encoding`); 0 builds the model without them.

    Example:
        >>> SequenceFlowConfig(features=4, hidden=8).flow_hidden
        (512, 512, 512)
    """

    features: int
    hidden: int = 512
    layers: int = 3
    dropout: float = 0.2
    cell: Literal["gru", "lstm"] = "gru"
    condition_size: int = 64
    flow: str = "realnvp"
    transforms: int = 5
    flow_hidden: tuple[int, ...] = (512, 512, 512)
    residual: bool = True
    point_weight: float = 1.0
    min_context: int = 2
    encoder_input: Literal["frames", "frames+deltas"] = "frames+deltas"
    covariates: int = 0

    def __post_init__(self) -> None:
        self.flow_hidden = tuple(int(h) for h in self.flow_hidden)
        for name in ("features", "hidden", "layers", "condition_size", "transforms"):
            if not is_count(getattr(self, name)):
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if any(h < 1 for h in self.flow_hidden):
            raise ValueError(f"flow_hidden must hold widths >= 1, got {self.flow_hidden}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {self.cell!r}")
        if self.flow not in FLOW_KINDS:
            raise ValueError(f"unknown flow {self.flow!r}; expected one of {FLOW_KINDS}")
        if self.min_context < 1:
            raise ValueError(f"min_context must be >= 1, got {self.min_context}")
        if self.covariates < 0:
            raise ValueError(f"covariates must be >= 0, got {self.covariates}")
        if self.encoder_input not in ("frames", "frames+deltas"):
            raise ValueError(
                f"encoder_input must be 'frames' or 'frames+deltas', got {self.encoder_input!r}"
            )
