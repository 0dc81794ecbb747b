"""Pixel scores of rendered samples against the real video, as the GRU-SNF paper reports them.

Frames are scored one at a time as they are rendered (a long video is never held whole) with
:mod:`snfseq.motion.quality`: MAE, PSNR and SSIM of every sample against the real frame, and
the pixel APD between samples, over the face region (the hull of the frame's face mesh,
dilated) and over the whole frame. :meth:`PixelScores.summary` then gives, per variant, lead
and region, the all-sample means and the best-k-of-N figures: a sample's score is its mean
over the frames, and the ``k`` best samples are averaged, exactly as
:func:`snfseq.motion.quality.best_of` does on whole videos.

Example:
    >>> import numpy as np
    >>> truth = np.zeros((16, 16, 3), np.uint8)
    >>> scores = PixelScores(best=1)
    >>> scores.add("GRU-NF", 1, np.stack([truth + 2, truth + 6]), truth)
    >>> summary = scores.summary()
    >>> float(summary.mae.sel(variant="GRU-NF", lead=1, region="frame"))  # (2 + 6) / 2
    4.0
    >>> float(summary.mae_best.sel(variant="GRU-NF", lead=1, region="frame"))
    2.0
"""

from __future__ import annotations

__all__ = ["METRICS", "REGIONS", "PixelScores", "format_scores", "scores_to_dict"]

from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from snfseq.files import json_ready
from snfseq.motion import quality

#: Per-frame metrics, and whether higher is better.
METRICS = {"mae": False, "psnr": True, "ssim": True}
#: Regions scored: the face (a mask) and the whole frame.
REGIONS = ("face", "frame")


class PixelScores:
    """Collects per-frame pixel scores of rendered samples and summarises them.

    Args:
        best: ``k`` of the best-k-of-N figures (the paper: 20 of 100); a variant with fewer
            samples averages all of them.

    Example:
        >>> import numpy as np
        >>> scores = PixelScores(best=2)
        >>> frame = np.full((8, 8, 3), 100, np.uint8)
        >>> scores.add("truth", None, frame[None], frame)  # lead None: the same for every lead
        >>> scores.add("GRU-NF", 2, np.stack([frame, frame + 1, frame + 9]), frame)
        >>> summary = scores.summary()
        >>> summary.mae.dims, summary.variant.values.tolist()
        (('variant', 'lead', 'region'), ['truth', 'GRU-NF'])
    """

    def __init__(self, best: int = 20) -> None:
        if isinstance(best, bool) or int(best) != best or best < 1:
            raise ValueError(f"best must be an integer >= 1, got {best!r}")
        self.best = int(best)
        # (variant, lead, region, metric) -> per-frame scores [S] ("apd": [] per frame).
        self._frames: dict[tuple[str, int | None, str, str], list[NDArray[np.float64]]] = {}
        self._sizes: dict[str, int] = {}

    def add(
        self,
        variant: str,
        lead: int | None,
        samples: NDArray[np.uint8],
        truth: NDArray[np.uint8],
        face: NDArray[np.bool_] | None = None,
    ) -> None:
        """Scores one frame's rendered samples.

        Args:
            variant: The variant's label.
            lead: The lead of the forecast, or None for a reference that has none (frames
                rendered from the true keypoints), repeated for every lead in the summary.
            samples: ``Array[S, H, W, 3]`` (uint8), the rendered samples of this frame.
            truth: ``Array[H, W, 3]`` (uint8), the real frame.
            face: ``Array[H, W]`` (bool), the face region; None scores the whole frame only.
        """
        if self._sizes.setdefault(variant, len(samples)) != len(samples):
            raise ValueError(f"{variant}: {len(samples)} samples, before {self._sizes[variant]}")
        regions = [("frame", None)] if face is None else [("face", face), ("frame", None)]
        for region, mask in regions:
            for metric in METRICS:
                value = getattr(quality, metric)(samples, truth, mask=mask)
                self._frames.setdefault((variant, lead, region, metric), []).append(value)
            apd = quality.pixel_apd(samples, mask=mask) if len(samples) > 1 else np.nan
            self._frames.setdefault((variant, lead, region, "apd"), []).append(np.asarray(apd))

    def summary(self) -> xr.Dataset:
        """The scores per variant, lead and region.

        Returns:
            A Dataset with dims ``(variant, lead, region)`` and variables ``mae``, ``psnr``,
            ``ssim`` (mean over frames and all samples), ``mae_best``, ``psnr_best``,
            ``ssim_best`` (mean of the ``k`` best samples, each scored by its mean over the
            frames: lowest MAE, highest PSNR and SSIM) and ``apd`` (pixel APD between samples,
            mean over frames; NaN for one sample). Attributes ``best_k``, ``samples`` (per
            variant) and ``frames``. Missing combinations are NaN.
        """
        if not self._frames:
            raise ValueError("no frames were scored")
        variants = list(self._sizes)
        leads = sorted({lead for _, lead, _, _ in self._frames if lead is not None}) or [0]
        names = [*METRICS, *(f"{m}_best" for m in METRICS), "apd"]
        shape = (len(variants), len(leads), len(REGIONS))
        values = {name: np.full(shape, np.nan) for name in names}
        frames = 0
        for (variant, lead, region, metric), rows in self._frames.items():
            per_frame = np.stack(rows)  # [T, S], or [T] for apd
            frames = max(frames, len(per_frame))
            column = slice(None) if lead is None else leads.index(lead)
            where = (variants.index(variant), column, REGIONS.index(region))
            if metric == "apd":
                values["apd"][where] = per_frame.mean()
                continue
            per_sample = np.sort(per_frame.mean(axis=0))
            k = min(self.best, len(per_sample))
            best = per_sample[len(per_sample) - k :] if METRICS[metric] else per_sample[:k]
            values[metric][where] = per_sample.mean()
            values[f"{metric}_best"][where] = best.mean()
        return xr.Dataset(
            {name: (("variant", "lead", "region"), array) for name, array in values.items()},
            coords={"variant": variants, "lead": leads, "region": list(REGIONS)},
            attrs={"best_k": self.best, "samples": dict(self._sizes), "frames": frames},
        )


def scores_to_dict(scores: xr.Dataset) -> dict[str, Any]:
    """Scores as plain JSON data: the attributes and one record per variant, lead and region.

    Example:
        >>> import numpy as np
        >>> scores = PixelScores(best=1)
        >>> frame = np.zeros((8, 8, 3), np.uint8)
        >>> scores.add("GRU-NF", 1, np.stack([frame, frame]), frame)
        >>> scores_to_dict(scores.summary())["scores"][0]["mae"]
        0.0
    """
    table = scores.to_dataframe().reset_index()
    records = [{k: json_ready(v) for k, v in row.items()} for row in table.to_dict("records")]
    records = [r for r in records if any(r[name] is not None for name in scores.data_vars)]
    return {"attrs": json_ready(dict(scores.attrs)), "scores": records}


def format_scores(scores: xr.Dataset) -> str:
    """A short table of the scores, one line per variant, lead and region.

    Example:
        >>> import numpy as np
        >>> scores = PixelScores(best=1)
        >>> frame = np.zeros((8, 8, 3), np.uint8)
        >>> scores.add("GRU-NF", 1, np.stack([frame, frame + 4]), frame)
        >>> print(format_scores(scores.summary()))
        variant  lead  region  MAE best-1  MAE all   PSNR dB   SSIM    APD
        GRU-NF      1  frame         0.00     2.00       inf  0.644   4.00
    """
    width = max(len("variant"), *(len(str(v)) for v in scores.variant.values)) + 2
    k = scores.attrs.get("best_k", "k")
    lines = [f"{'variant':<{width}}lead  region  MAE best-{k}  MAE all   PSNR dB   SSIM    APD"]
    for variant in scores.variant.values:
        for lead in scores.lead.values:
            for region in scores.region.values:
                row = scores.sel(variant=variant, lead=lead, region=region)
                if bool(np.isnan(row.mae)):
                    continue
                lines.append(
                    f"{str(variant):<{width}}{int(lead):>4}  {str(region):<6}  "
                    f"{float(row.mae_best):>10.2f}  {float(row.mae):>7.2f}  "
                    f"{float(row.psnr):>8.2f}  {float(row.ssim):>5.3f}  {float(row.apd):>5.2f}"
                )
    return "\n".join(lines)
