"""`LaidOut`: what a model whose features are keypoints of a layout knows about that layout.

A model trained on compact keypoints (``mesh10``, ``pca:8``...) keeps the fitted
:class:`~snfseq.landmarks.Layout` they came from, saves it with its weights, and maps its
frames back to the face mesh (:meth:`LaidOut.to_mesh`), so that rendering needs no layout flag.
:class:`snfseq.SequenceFlow` mixes it in.

Example:
    >>> import numpy as np
    >>> from snfseq.landmarks import get_layout
    >>> class Model(LaidOut):
    ...     features = 20
    >>> model = Model()
    >>> model.layout = get_layout("mesh10").fit(np.random.default_rng(0).normal(size=(30, 468, 2)))
    >>> model.to_mesh(np.zeros((5, 20))).shape, layout_state(model)["name"]
    ((5, 468, 2), 'mesh10')
"""

from __future__ import annotations

__all__ = ["LaidOut", "layout_state", "restore_layout"]

from typing import Any

import numpy as np
import torch

from .layouts import Layout, layout_from_state


class LaidOut:
    """Mixin: a fitted :class:`~snfseq.landmarks.Layout` the ``features`` are in, or None."""

    _layout: Layout | None = None

    @property
    def features(self) -> int:
        """Features per frame ``D`` (the class that mixes this in defines it)."""
        raise NotImplementedError

    @property
    def layout(self) -> Layout | None:
        """The fitted keypoint layout the features are in (saved with the model), or None.

        Set it to the layout of the training data: :meth:`to_mesh` (and ``snfseq render``)
        then map frames back to the face mesh.

        Example:
            >>> from snfseq import SequenceFlow
            >>> SequenceFlow(features=4, hidden=8, layers=1, transforms=2).layout is None
            True
        """
        return self._layout

    @layout.setter
    def layout(self, layout: Layout | None) -> None:
        if layout is not None:
            if not layout.is_fitted:
                raise ValueError(f"layout {layout.name!r} is not fitted; fit it on mesh frames")
            if self.features % layout.num_keypoints:
                raise ValueError(f"{layout!r} does not fit the model's {self.features} features")
        self._layout = layout

    def to_mesh(self, frames: Any) -> np.ndarray:
        """Maps frames ``[..., D]`` in the model's layout to face-mesh points ``[..., N, C]``.

        Example:
            >>> class Model(LaidOut):
            ...     features = 4
            >>> Model().to_mesh(np.zeros((1, 4)))
            Traceback (most recent call last):
            ...
            ValueError: this model has no layout; set model.layout to the one it was fit in
        """
        if self._layout is None:
            raise ValueError("this model has no layout; set model.layout to the one it was fit in")
        array = np.asarray(torch.as_tensor(frames).detach().cpu())
        if array.shape[-1] != self.features:
            raise ValueError(f"frames have {array.shape[-1]} features, the model {self.features}")
        keypoints = array.reshape(*array.shape[:-1], self._layout.num_keypoints, -1)
        return self._layout.expand(keypoints)


def layout_state(model: LaidOut) -> dict[str, Any] | None:
    """The model's layout as checkpoint data (name and tensors), or None without one.

    Example:
        >>> layout_state(LaidOut()) is None
        True
    """
    if model.layout is None:
        return None
    state = {k: torch.from_numpy(v) for k, v in model.layout.state_dict().items()}
    return {"name": model.layout.name, "state": state}


def restore_layout(model: LaidOut, saved: dict[str, Any] | None) -> None:
    """Sets the layout saved by :func:`layout_state` (nothing for None).

    Example:
        >>> model = LaidOut()
        >>> restore_layout(model, None); model.layout is None
        True
    """
    if saved is not None:
        state = {k: v.cpu().numpy() for k, v in saved["state"].items()}
        model.layout = layout_from_state(saved["name"], state)
