"""Reduced precision: a forecast under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (linear
layers and the GRU's products in bfloat16) is statistically indistinguishable from float32 on
real face data: energy scores and held-out NLL move far less than sampling noise."""

from __future__ import annotations

import torch

from snfseq import Refinement, metrics

CONTEXT, HORIZON = 8, 8


def test_bfloat16_autocast_forecasts_match_float32_within_sampling_noise(
    trained_model, face_split
) -> None:
    windows = face_split["test"]
    context, future = windows[:, :CONTEXT], windows[:, CONTEXT : CONTEXT + HORIZON]
    seen: list[torch.dtype] = []
    hook = trained_model.point_head.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    try:
        for refinement in (None, Refinement(kernel="mala")):
            scores = {False: [], True: []}
            for seed in range(4):
                for bf16 in (False, True):
                    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                        fc = trained_model.forecast(
                            context, HORIZON, 200, refinement=refinement, seed=seed
                        )
                    assert fc.samples.dtype == torch.float32
                    scores[bf16].append(float(metrics.energy_score(fc.samples, future).mean()))
            noise = max(scores[False]) - min(scores[False])  # seed to seed, in float32
            shifts = [abs(a - b) for a, b in zip(scores[True], scores[False], strict=True)]
            assert max(shifts) < 0.25 * noise, (shifts, noise)
    finally:
        hook.remove()
    assert torch.bfloat16 in seen  # the refined runs really multiplied in bfloat16
    with torch.no_grad():
        nll32 = trained_model.nll(windows, context=CONTEXT).mean()
        with torch.autocast("cpu", torch.bfloat16):
            nll16 = trained_model.nll(windows, context=CONTEXT).mean()
    assert abs(float(nll16 - nll32)) < 0.01  # nats per feature
