"""Motion transfer above the model: landmarks in, forecasts, rendered video and pixel scores out.

The pipeline that ``snfseq render``, the examples, the demo and the benchmarks share:

- :mod:`~snfseq.transfer.features`: landmarks to the keypoints a model reads, through the
  layout it carries (:func:`training_keypoints` for training, :func:`model_keypoints` later),
  and the model's frames back to the face mesh (:func:`to_mesh`);
- :mod:`~snfseq.transfer.rolling`: rolling lead-h forecasts over a video
  (:func:`lead_forecast`: frame ``t`` forecast from the frames up to ``t - h``, the network
  delay hidden) and the frames after the last one (:func:`forecast_dataset`);
- :mod:`~snfseq.transfer.render`: a source frame animated by the true and the forecast
  keypoints, written side by side (:func:`render_video`), and the whole run
  (:func:`motion_transfer`);
- :mod:`~snfseq.transfer.scores`: the GRU-SNF paper's pixel scores (MAE, PSNR, SSIM, pixel
  APD; best-k-of-N and all samples; face region and whole frame), :class:`PixelScores`;
- :mod:`~snfseq.transfer.streaming`: a video's keypoints streamed over a delayed, lossy link
  to hold, linear and forecast receivers, swept over delay, bandwidth and loss
  (:func:`stream_report`, :func:`plot_stream_report`).

Example:
    >>> from snfseq import transfer
    >>> transfer.variant_label("none"), transfer.TRUTH_LABEL
    ('GRU-NF', 'rendered from true keypoints')
"""

from .features import (
    describe_keypoints,
    is_face_mesh,
    model_keypoints,
    reduce_keypoints,
    to_mesh,
    training_keypoints,
)
from .render import REAL_LABEL, TRUTH_LABEL, motion_transfer, render_video, source_frame
from .rolling import VARIANTS, forecast_dataset, get_refinement, lead_forecast, variant_label
from .scores import METRICS, REGIONS, PixelScores, format_scores, scores_to_dict
from .streaming import (
    SCORES,
    STREAM_PLOTS,
    format_stream_report,
    plot_stream_report,
    stream_report,
    stream_sweep,
)

__all__ = [
    "METRICS",
    "REAL_LABEL",
    "REGIONS",
    "SCORES",
    "STREAM_PLOTS",
    "TRUTH_LABEL",
    "VARIANTS",
    "PixelScores",
    "describe_keypoints",
    "forecast_dataset",
    "format_scores",
    "format_stream_report",
    "get_refinement",
    "is_face_mesh",
    "lead_forecast",
    "model_keypoints",
    "motion_transfer",
    "plot_stream_report",
    "reduce_keypoints",
    "render_video",
    "scores_to_dict",
    "source_frame",
    "stream_report",
    "stream_sweep",
    "to_mesh",
    "training_keypoints",
    "variant_label",
]
