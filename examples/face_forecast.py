"""Face-landmark forecasting at realistic size, with a fan chart of the forecasts.

68-point layout (136 features) from both bundled real videos, context 8 -> horizon 16 as in
the paper's VoxCeleb setting, GRU 2 x 256, 5 coupling layers.

Run: ``python examples/face_forecast.py [--quick] [--output face.png]``
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402

from snfseq import Refinement, SequenceFlow, data, metrics, plots  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", default="face_forecast.png")
    args = parser.parse_args()
    torch.manual_seed(0)
    sequences = data.face_sequences(layout="mesh10" if args.quick else "mesh68")
    train, test = data.split_sequences(sequences, (0.8, 0.2), by="time")
    context, horizon = 8, 8 if args.quick else 16
    train_windows = data.make_windows(train, context, horizon, stride=2)
    test_windows = data.make_windows(test, context, horizon, stride=4)
    model = SequenceFlow(
        features=train_windows.shape[-1],
        hidden=32 if args.quick else 256,
        layers=1 if args.quick else 2,
        transforms=3 if args.quick else 5,
        flow_hidden=(32,) if args.quick else (256, 256),
    )
    model.fit(train_windows, context=context, epochs=2 if args.quick else 80)
    past, truth = test_windows[:, :context], test_windows[:, context:]
    for name, refinement in [("GRU-NF", None), ("GRU-SNF paper", Refinement.paper())]:
        fc = model.forecast(past, horizon, 100, refinement=refinement, seed=0)
        print(
            f"{name:14s} energy score {metrics.energy_score(fc.samples, truth).mean():.4f}  "
            f"CRPS {metrics.crps(fc.samples, truth, reduce='mean').mean():.5f}  "
            f"APD {metrics.apd(fc.samples).mean():.4f}"
        )
    figure = plots.plot_fan(fc, truth=truth, context=past, series=0)
    figure.savefig(args.output, dpi=110, bbox_inches="tight")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
