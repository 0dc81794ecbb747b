"""Posterior forecasts on real data: refinement toward observations and constraints.

``Refinement(prior="flow", target=...)`` makes the target the flow's own forecast times a
likelihood, so that refinement plus path weights give the forecast *given* something known.
Three questions, each on held-out real data, each against GRU-NF (which ignores what is known)
and against importance sampling from GRU-NF with the same samples and with the same time:

* **face, half the keypoints**: every forecast frame's first 5 keypoints (of the 10-point
  layout, x and y) arrive, the other 5 do not (a packet that carries part of a frame). Scored:
  the unknown keypoints.
* **face, keyframes**: every 4th forecast frame arrives whole (frames 4, 8, 12, 16 of 16);
  scored: the frames between them.
* **body, bones**: nothing observed; the DeepMimic skeleton's 14 bone lengths (measured on the
  last context frame) held with a 5 mm tolerance. Scored: all joints, and the bone-length
  violation.

Models: GRU 2 x 128, 5 affine couplings of (128, 128), per-sample feedback, context 8 ->
horizon 16; face trained on wolfgang, tested on carphone (another person); body trained on 12
DeepMimic clips, tested on the 3 longest others. One model per seed; metrics are averaged over
seeds per window, then 95 % intervals come from a moving-block bootstrap over windows (blocks
span one window's frames, never two sequences); paired differences against GRU-NF likewise.

Variants: ``gru-nf``; ``is`` (no MCMC, weights = likelihood: ``steps=0``); ``is-time`` (the
same with as many more samples as the SMC's time buys, at most 20x); ``pf`` (``steps=0`` with
resampling: a bootstrap particle filter over steps); ``smc`` (MALA in the flow's base space,
``after=[-1] * 6``, ``lam`` from 0.01 to 1 geometric, 3 transitions per block, resampling
between blocks and steps at ESS < S / 2). Weighted metrics wherever weights exist.

Run: ``python benchmarks/bench_posterior.py [--quick] [--threads N]``; writes
``results/posterior.json`` and ``.md`` (``posterior_quick.*`` with ``--quick``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
from machine import arguments, describe, log, write_report
from quality_stats import block_indices, interval

from snfseq import Refinement, SequenceFlow, data, energy, metrics, snf

TEST_CLIPS = 3


@dataclass(frozen=True)
class Settings:
    context: int = 8
    horizon: int = 16
    samples: int = 100
    seeds: int = 3
    epochs: int = 60
    hidden: int = 128
    layers: int = 2
    width: int = 128
    transforms: int = 5
    stride: int = 4
    max_windows: int = 64
    blocks: int = 6
    steps: int = 3
    step_size: float = 0.2
    face_noise: float = 0.002  # data units (the frame is 1 x 1): about a third of a pixel at 176
    bone_tolerance: float = 0.005  # metres
    keyframe_every: int = 4
    max_time_factor: int = 20
    bootstrap: int = 2000


QUICK = Settings(
    horizon=6, samples=16, seeds=1, epochs=2, hidden=16, layers=1, width=16, transforms=2,
    stride=12, max_windows=6, blocks=2, steps=1, keyframe_every=3, max_time_factor=2,
    bootstrap=50,
)  # fmt: skip


def datasets(settings: Settings) -> dict[str, dict[str, Any]]:
    """Train and test sequences of the face (mesh10, x/y) and body (15 joints x 3) data."""
    wolfgang, carphone = data.face_sequences(["wolfgang", "carphone"], layout="mesh10")
    clips = data.mocap_clips()
    lengths = {clip: len(data.load_mocap(clip)) for clip in clips}
    test_clips = sorted(clips, key=lambda clip: -lengths[clip])[:TEST_CLIPS]
    train_clips = [clip for clip in clips if clip not in test_clips]
    return {
        "face": {"train": [wolfgang], "test": [carphone], "test_names": ["carphone"]},
        "body": {
            "train": data.mocap_sequences(train_clips),
            "test": data.mocap_sequences(test_clips),
            "test_names": test_clips,
        },
    }


def test_windows(sequences: list[np.ndarray], settings: Settings) -> tuple[torch.Tensor, list[int]]:
    """Windows of every test sequence (at most ``max_windows`` in all) and the sequence of each."""
    per = max(1, settings.max_windows // len(sequences))
    pieces, owner = [], []
    length = settings.context + settings.horizon
    for index, sequence in enumerate(sequences):
        windows = data.make_windows([sequence], settings.context, settings.horizon, settings.stride)
        windows = windows[:per]
        pieces.append(windows)
        owner += [index] * len(windows)
    assert all(p.shape[1] == length for p in pieces)
    return torch.cat(pieces), owner


def train(
    sequences: list[np.ndarray], features: int, seed: int, settings: Settings
) -> SequenceFlow:
    train_part, val_part = data.split_sequences(sequences, (0.85, 0.15), by="time", gap=8)
    windows = data.make_windows(train_part, settings.context, settings.horizon, stride=1)
    val = data.make_windows(val_part, settings.context, min(settings.horizon, 8), stride=1)
    torch.manual_seed(seed)
    model = SequenceFlow(
        features=features,
        hidden=settings.hidden,
        layers=settings.layers,
        transforms=settings.transforms,
        flow_hidden=(settings.width, settings.width),
    )
    model.fit(
        windows,
        context=settings.context,
        val_windows=val,
        epochs=settings.epochs,
        batch_size=32,
        lr=2e-3,
        seed=seed,
        progress=False,
    )
    return model.eval()


def variants(
    settings: Settings, target: Any, time_factor: int
) -> dict[str, tuple[Refinement | None, int]]:
    """Name -> (refinement, samples) of every variant."""
    blocks = settings.blocks
    importance = Refinement(prior="flow", target=target, steps=0, after=[-1], lam=[1.0])
    return {
        "gru-nf": (None, settings.samples),
        "is": (importance, settings.samples),
        "is-time": (importance, settings.samples * time_factor),
        "pf": (replace(importance, resample=0.5), settings.samples),
        "smc": (
            Refinement(
                kernel="mala",
                prior="flow",
                target=target,
                after=[-1] * blocks,
                lam=torch.logspace(-2, 0, blocks).tolist(),
                steps=settings.steps,
                step_size=settings.step_size,
                resample=0.5,
            ),
            settings.samples,
        ),
    }


def scores(
    fc: Any, future: torch.Tensor, scored: torch.Tensor, bones: Any | None
) -> dict[str, torch.Tensor]:
    """Per-window metrics ``Tensor[B]`` of one forecast on the ``scored`` mask ``[H, D]``."""
    frames = scored.any(1)
    features = scored[frames].any(0)
    samples = fc.samples[:, :, frames][..., features]
    truth = future[:, frames][..., features]
    weights = fc.log_weights
    probs = (
        torch.full(fc.samples.shape[:2], 1 / fc.samples.shape[0])
        if weights is None
        else torch.softmax(weights, 0)
    )
    mean = (probs[..., None, None] * samples).sum(0)
    out = {
        "energy_score": metrics.energy_score(samples, truth, log_weights=weights),
        "crps": metrics.crps(samples, truth, log_weights=weights).mean((-1, -2)),
        "mean_abs_error": (mean - truth).abs().mean((-1, -2)),
        "ess": (1 / probs.square().sum(0)) / fc.samples.shape[0],
    }
    if bones is not None:
        stray = (bones.distances(fc.samples) - bones.lengths[None, :, None]).abs().mean((-1, -2))
        out["bone_error_mm"] = 1000 * (probs * stray).sum(0)
    return out


def block_interval(values: np.ndarray, owner: list[int], block: int, reps: int) -> list[float]:
    """``[mean, low, high]``: the mean of per-window ``values`` (windows of one sequence
    consecutive, ``owner`` naming each one's sequence) and its 95 % moving-block bootstrap
    interval (:mod:`quality_stats`: blocks of ``block`` windows, never across sequences)."""
    groups = np.unique(np.asarray(owner), return_counts=True)[1].tolist()
    stats = interval(values, block_indices(groups, block, reps))
    return [stats["mean"], stats["low"], stats["high"]]


def run_scenario(
    name: str,
    models: list[SequenceFlow],
    windows: torch.Tensor,
    owner: list[int],
    settings: Settings,
) -> dict[str, Any]:
    context = windows[:, : settings.context]
    future = windows[:, settings.context :]
    horizon, features = future.shape[1:]
    scored = torch.ones(horizon, features, dtype=torch.bool)
    bones = None
    if name == "half":
        scored[:, : features // 2] = False
        values = future.clone()
        values[..., features // 2 :] = float("nan")
        target: Any = snf.Observations(values, noise=settings.face_noise)
    elif name == "keyframes":
        known = torch.arange(horizon) % settings.keyframe_every == settings.keyframe_every - 1
        scored[known] = False
        values = torch.where(known[None, :, None], future, float("nan"))
        target = snf.Observations(values, noise=settings.face_noise)
    else:
        last = context[:, -1].reshape(len(windows), -1, 3)
        lengths = torch.stack(
            [(last[:, i] - last[:, j]).norm(dim=-1) for i, j in data.MOCAP_BONES], -1
        )
        bones = energy.Distances(data.MOCAP_BONES, lengths, coords=3, scale=settings.bone_tolerance)

        def target(step: snf.ForecastStep) -> energy.Energy:
            rows = energy.Distances(
                data.MOCAP_BONES, lengths[step.series], coords=3, scale=settings.bone_tolerance
            )
            return step.to_data.pull_back(rows)

    per_seed: dict[str, list[dict[str, torch.Tensor]]] = {}
    cost: dict[str, list[float]] = {}
    time_factor = 1
    for seed, model in enumerate(models):
        plan = variants(settings, target, time_factor)
        for variant, (refinement, samples) in plan.items():
            tic = time.perf_counter()
            with torch.no_grad():
                fc = model.forecast(
                    context, settings.horizon, samples, refinement=refinement, seed=100 + seed
                )
            elapsed = time.perf_counter() - tic
            cost.setdefault(variant, []).append(1000 * elapsed / settings.horizon)
            per_seed.setdefault(variant, []).append(scores(fc, future, scored, bones))
            log(f"  {name} seed {seed} {variant}: {elapsed:.1f} s")
        if seed == 0:  # later seeds give is-time the samples SMC's time buys
            ratio = cost["smc"][0] / cost["gru-nf"][0]
            time_factor = int(min(settings.max_time_factor, max(1, round(ratio))))
    block = math.ceil((settings.context + settings.horizon) / settings.stride)
    table: dict[str, Any] = {}
    for variant, runs in per_seed.items():
        row: dict[str, Any] = {"ms_per_step": float(np.median(cost[variant]))}
        for metric in runs[0]:
            values = torch.stack([r[metric] for r in runs]).mean(0).numpy()
            row[metric] = block_interval(values, owner, block, settings.bootstrap)
            if metric != "ess" and variant != "gru-nf":
                base = torch.stack([r[metric] for r in per_seed["gru-nf"]]).mean(0).numpy()
                row[f"{metric}_minus_gru_nf"] = block_interval(
                    values - base, owner, block, settings.bootstrap
                )
        table[variant] = row
    return {
        "variants": table,
        "time_factor": time_factor,
        "windows": len(windows),
        "scored_fraction": float(scored.float().mean()),
    }


def two_modes(count: int, settings: Settings, seed: int) -> torch.Tensor:
    """Windows ``[N, context + horizon, 2]`` whose future drifts up or down by 0.3 a frame
    (each window's mode drawn at random), after a context that does not tell which."""
    generator = torch.Generator().manual_seed(seed)
    length = settings.context + settings.horizon
    noise = 0.1 * torch.randn(count, length, 2, generator=generator)
    mode = torch.randint(0, 2, (count, 1, 1), generator=generator) * 2.0 - 1.0
    drift = torch.zeros(count, length, 2)
    drift[:, settings.context :] = 0.3 * mode
    return 5.0 + (drift + noise).cumsum(1) - noise[:, : settings.context].sum(1, keepdim=True)


def mode_keeping(settings: Settings) -> dict[str, Any]:
    """Does a refinement keep the modes of a bimodal future? Per sample path, the sign of
    its first step's increment against the sign of its last quarter's (+1 when a path keeps
    the mode it started in), and the share of paths that end between the modes."""
    train_windows, test = two_modes(512, settings, 0), two_modes(64, settings, 1)
    models = []
    for seed in range(settings.seeds):
        torch.manual_seed(seed)
        model = SequenceFlow(
            features=2, hidden=settings.hidden, layers=1, transforms=settings.transforms,
            flow_hidden=(settings.width, settings.width),
        )  # fmt: skip
        model.fit(train_windows, context=settings.context, epochs=settings.epochs, lr=2e-3,
                  batch_size=32, seed=seed, progress=False)  # fmt: skip
        models.append(model.eval())
    blocks = settings.blocks
    plan = {
        "gru-nf": None,
        "paper": Refinement.paper(),
        "mala (gaussian target)": Refinement(kernel="mala"),
        "mala (flow prior x gaussian)": Refinement(
            kernel="mala", prior="flow", after=[-1] * blocks,
            lam=torch.logspace(-2, 0, blocks).tolist(), steps=settings.steps,
            step_size=settings.step_size, resample=0.5,
        ),
    }  # fmt: skip
    context, future = test[:, : settings.context], test[:, settings.context :]
    quarter = max(1, settings.horizon // 4)
    out: dict[str, Any] = {}
    for name, refinement in plan.items():
        kept, between, score = [], [], []
        for seed, model in enumerate(models):
            with torch.no_grad():
                fc = model.forecast(context, settings.horizon, settings.samples,
                                    refinement=refinement, seed=seed)  # fmt: skip
            paths = fc.samples.mean(-1)  # [S, B, H], both coordinates drift together
            steps = torch.diff(paths, dim=-1, prepend=context[None, :, -1:, :].mean(-1).expand(
                paths.shape[0], -1, 1))  # fmt: skip
            first, late = steps[..., 0].sign(), steps[..., -quarter:].mean(-1).sign()
            kept.append(float((first * late).mean()))
            end = paths[..., -1] - context[None, :, -1].mean(-1)
            between.append(float((end.abs() < 0.15 * settings.horizon).float().mean()))
            score.append(
                float(metrics.energy_score(fc.samples, future, log_weights=fc.log_weights).mean())
            )
        out[name] = {
            "sign_agreement": float(np.mean(kept)),
            "between_modes": float(np.mean(between)),
            "energy_score": float(np.mean(score)),
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = arguments(__doc__)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = QUICK if args.quick else Settings()
    started = time.perf_counter()
    sets = datasets(settings)
    results: dict[str, Any] = {}
    for dataset, scenarios in (("face", ["half", "keyframes"]), ("body", ["bones"])):
        parts = sets[dataset]
        features = parts["train"][0].shape[1]
        models = []
        for seed in range(settings.seeds):
            log(f"{dataset}: training seed {seed}")
            models.append(train(parts["train"], features, seed, settings))
        windows, owner = test_windows(parts["test"], settings)
        for scenario in scenarios:
            results[scenario] = run_scenario(scenario, models, windows, owner, settings)
            results[scenario]["dataset"] = dataset
            results[scenario]["test"] = parts["test_names"]
    log("two modes (synthetic)")
    modes = mode_keeping(settings)
    report = {
        "settings": asdict(settings),
        "modes": modes,
        "machine": describe(args.threads),
        "seconds": time.perf_counter() - started,
        "scenarios": results,
    }
    suffix = "_quick" if args.quick else ""
    write_report(args.out, f"posterior{suffix}", report, markdown(report))
    return report


def _cell(value: list[float], digits: int = 4) -> str:
    mean, low, high = value
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def markdown(report: dict[str, Any]) -> str:
    s, m = report["settings"], report["machine"]
    lines = [
        "# Posterior forecasts: refinement toward what is known (real data)",
        "",
        f"{m['cpu']}, {m['threads']} torch threads, torch {m['torch']}; {s['seeds']} seeds, "
        f"S = {s['samples']}, context {s['context']} -> horizon {s['horizon']}; "
        f"{report['seconds'] / 60:.1f} min. Mean over windows [95 % moving-block bootstrap "
        "interval]; differences are paired per window against GRU-NF (negative = better).",
        "",
    ]
    titles = {
        "half": "Face: the first 5 of 10 keypoints known at every frame; scored: the other 5",
        "keyframes": f"Face: every {s['keyframe_every']}th frame known; scored: the frames between",
        "bones": "Body: bone lengths held (5 mm tolerance), nothing observed; scored: all joints",
    }
    for name, scenario in report["scenarios"].items():
        variants = scenario["variants"]
        metric_names = [k for k in variants["gru-nf"] if k != "ms_per_step"]
        lines += [
            f"## {titles[name]}",
            "",
            f"{scenario['windows']} test windows of {', '.join(scenario['test'])}; is-time draws "
            f"{scenario['time_factor']}x the samples.",
            "",
            "| variant | " + " | ".join(metric_names) + " | ms/step | x GRU-NF |",
            "|---|" + "---:|" * (len(metric_names) + 2),
        ]
        base_cost = variants["gru-nf"]["ms_per_step"]
        for variant, row in variants.items():
            cells = [_cell(row[k], 3 if k == "bone_error_mm" else 4) for k in metric_names]
            lines.append(
                f"| {variant} | " + " | ".join(cells) + f" | {row['ms_per_step']:.1f} | "
                f"{row['ms_per_step'] / base_cost:.1f} |"
            )
        differences = [k for k in metric_names if k != "ess"]
        lines += ["", "| variant - GRU-NF | " + " | ".join(differences) + " |"]
        lines.append("|---|" + "---:|" * len(differences))
        for variant, row in variants.items():
            if variant == "gru-nf":
                continue
            cells = [
                _cell(row[f"{k}_minus_gru_nf"], 3 if k == "bone_error_mm" else 4)
                for k in differences
            ]
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## Do the refinements keep the modes? (synthetic: the future drifts up or down)",
        "",
        "Sign agreement: the mean over paths of sign(first step) x sign(last quarter's "
        "steps), 1 when every path keeps the mode it starts in. Between modes: the share of "
        "paths whose last frame sits within 0.15 x H of the last context frame (the truth "
        "ends 0.3 x H away).",
        "",
        "| variant | sign agreement | between modes | energy score |",
        "|---|---:|---:|---:|",
    ]
    for name, row in report["modes"].items():
        lines.append(
            f"| {name} | {row['sign_agreement']:.3f} | {row['between_modes']:.3f} | "
            f"{row['energy_score']:.3f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
