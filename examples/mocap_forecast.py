"""Forecast 3-D body joints from the DeepMimic motion-capture clips that ship with pybullet.

Trains a GRU-NF on 15 joints x 3 coordinates, splits clips by sequence (never windows of one
clip on both sides), and compares GRU-NF with GRU-SNF refinements on the held-out clips.

Run: ``python examples/mocap_forecast.py [--quick]``
"""

from __future__ import annotations

import argparse

import torch

from snfseq import Refinement, SequenceFlow, data, metrics
from snfseq.baselines import RandomWalkBaseline


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    sequences = data.mocap_sequences()
    train, test = data.split_sequences(sequences, (0.8, 0.2), by="sequence", seed=0)
    context, horizon = 10, 10
    train_windows = data.make_windows(train, context, horizon, stride=2)
    test_windows = data.make_windows(test, context, horizon, stride=5)
    model = SequenceFlow(
        features=train_windows.shape[-1],
        hidden=32 if args.quick else 256,
        layers=1 if args.quick else 2,
        transforms=3 if args.quick else 5,
        flow_hidden=(32,) if args.quick else (256, 256),
    )
    model.fit(train_windows, context=context, epochs=2 if args.quick else 80)
    nll = model.nll(test_windows, context).mean()
    rw = RandomWalkBaseline().fit(train_windows).nll(test_windows, context).mean()
    print(f"held-out NLL/feature: model {nll:.3f}, random walk {rw:.3f}")
    past, truth = test_windows[:, :context], test_windows[:, context:]
    for name, refinement in [
        ("GRU-NF", None),
        ("GRU-SNF paper", Refinement.paper()),
        ("GRU-SNF MALA", Refinement(kernel="mala")),
    ]:
        fc = model.forecast(past, horizon, 50, refinement=refinement, seed=0)
        print(
            f"{name:14s} energy score {metrics.energy_score(fc.samples, truth).mean():.4f}  "
            f"ADE {metrics.ade(fc.samples, truth, coords=3).mean():.4f}  "
            f"minADE {metrics.min_ade(fc.samples, truth, coords=3).mean():.4f}  "
            f"APD {metrics.apd(fc.samples).mean():.4f}"
        )


if __name__ == "__main__":
    main()
