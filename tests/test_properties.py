"""Properties of the forecast metrics and the keypoint codec, on inputs hypothesis draws.

Metrics: CRPS is non-negative, equals the absolute error for one sample and properscoring's
(weighted) ensemble CRPS; the energy score is non-negative, unchanged by a common shift of
samples and outcome and by a permutation of the samples (with their weights); integer weights
equal repeated samples; quantiles and interval coverage grow with the level. Codec: a round trip
lands on the quantisation grid, within ``step / 2``; packets lost, repeated or out of order are
refused (``DesyncError``) or decode exactly as in order, never to another frame.
"""

from __future__ import annotations

import numpy as np
import properscoring as ps
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from snfseq import metrics
from snfseq.motion.codec import DesyncError, KeypointCodec

# Small example counts keep the module within seconds; no deadline, as timings on shared CPUs
# vary far more than the examples do.
FEW = settings(max_examples=40, deadline=None)

values = st.floats(-1e3, 1e3, allow_nan=False, width=64)


@st.composite
def ensembles(draw: st.DrawFn, min_samples: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``(samples: Tensor[S, B, H, D], obs: Tensor[B, H, D])`` in float64, with ties likely."""
    s = draw(st.integers(min_samples, 9))
    b, h, d = (draw(st.integers(1, 3)) for _ in range(3))
    pool = draw(st.lists(values, min_size=1, max_size=6))  # few distinct values: ties
    entries = st.one_of(values, st.sampled_from(pool))
    samples = draw(hnp.arrays(np.float64, (s, b, h, d), elements=entries))
    obs = draw(hnp.arrays(np.float64, (b, h, d), elements=entries))
    return torch.from_numpy(samples), torch.from_numpy(obs)


def weights_for(draw: st.DrawFn, samples: torch.Tensor) -> torch.Tensor:
    """Non-negative weights ``Tensor[S, B]``, positive somewhere in every series."""
    shape = samples.shape[:2]
    w = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 10, allow_nan=False)))
    w[0] += 0.5
    return torch.from_numpy(w)


def tolerance(*tensors: torch.Tensor) -> float:
    """Absolute slack for float64 sums of terms as large as the inputs."""
    return 1e-9 * (1 + max(float(t.abs().max()) for t in tensors))


# --- metrics -------------------------------------------------------------------------------------


@FEW
@given(ensembles(), st.data())
def test_crps_is_non_negative_and_matches_properscoring(ensemble, data) -> None:
    samples, obs = ensemble
    weights = weights_for(data.draw, samples) if data.draw(st.booleans()) else None
    score = metrics.crps(samples, obs, weights=weights)
    assert bool((score >= -tolerance(samples, obs)).all())
    per_entry = None if weights is None else weights[:, :, None, None].expand_as(samples)
    reference = ps.crps_ensemble(
        obs.numpy(),
        samples.movedim(0, -1).numpy(),
        weights=None if per_entry is None else per_entry.movedim(0, -1).numpy(),
    )
    np.testing.assert_allclose(score.numpy(), reference, rtol=1e-9, atol=tolerance(samples, obs))


@FEW
@given(ensembles())
def test_crps_of_one_sample_is_its_absolute_error(ensemble) -> None:
    samples, obs = ensemble
    one = samples[:1]
    np.testing.assert_allclose(metrics.crps(one, obs), (one[0] - obs).abs(), rtol=1e-12)
    absolute = metrics.mae(one, obs, point="samples", reduce=None)
    np.testing.assert_allclose(metrics.crps(one, obs), absolute, rtol=1e-12)


@FEW
@given(ensembles(), st.data())
def test_energy_score_is_non_negative_and_blind_to_shifts_and_sample_order(ensemble, data):
    samples, obs = ensemble
    weights = weights_for(data.draw, samples)
    score = metrics.energy_score(samples, obs, weights=weights)
    slack = tolerance(samples, obs)
    assert bool((score >= -slack).all())
    shift = torch.from_numpy(data.draw(hnp.arrays(np.float64, obs.shape[-2:], elements=values)))
    shifted = metrics.energy_score(samples + shift, obs + shift, weights=weights)
    # The pair terms are computed on centred data; a shift costs only rounding.
    np.testing.assert_allclose(shifted, score, rtol=1e-7, atol=1e3 * slack)
    order = torch.tensor(data.draw(st.permutations(range(len(samples)))))
    permuted = metrics.energy_score(samples[order], obs, weights=weights[order])
    np.testing.assert_allclose(permuted, score, rtol=1e-9, atol=slack)


@FEW
@given(ensembles(), st.data())
def test_integer_weights_equal_repeated_samples(ensemble, data) -> None:
    samples, obs = ensemble
    counts = data.draw(st.lists(st.integers(0, 3), min_size=len(samples), max_size=len(samples)))
    counts[0] += 1  # some sample must count
    repeats = torch.tensor(counts)
    weights = repeats.double()[:, None].expand(samples.shape[:2])
    repeated = samples.repeat_interleave(repeats, dim=0)
    for metric in (metrics.crps, metrics.energy_score):
        np.testing.assert_allclose(
            metric(samples, obs, weights=weights),
            metric(repeated, obs),
            rtol=1e-9,
            atol=1e3 * tolerance(samples, obs),
        )


levels = st.lists(st.floats(0, 1), min_size=2, max_size=6).map(sorted)


@FEW
@given(ensembles(), levels)
def test_quantiles_and_coverage_grow_with_the_level(ensemble, ordered) -> None:
    samples, obs = ensemble
    quantiles = metrics.quantile(samples, ordered)
    assert bool((quantiles.diff(dim=0) >= 0).all())
    # Central intervals are nested: a higher level never covers less.
    covered = metrics.coverage(samples, obs, ordered, reduce=None)
    assert bool((covered.diff(dim=0) >= 0).all())


# --- the keypoint codec --------------------------------------------------------------------------

steps = st.sampled_from([2.0**-6, 2.0**-8, 2.0**-10])


@st.composite
def clips(draw: st.DrawFn) -> tuple[KeypointCodec, np.ndarray]:
    """A codec and ``Array[T, D]`` frames inside its bounds (T < 128: frame numbers are
    modulo 128)."""
    codec = KeypointCodec(
        draw(st.integers(1, 8)),
        step=draw(steps),
        keyframe_interval=draw(st.integers(1, 10)),
        bound=2.0,
    )
    length = draw(st.integers(1, 40))
    inside = st.floats(-2.0 + codec.step, 2.0 - codec.step, allow_nan=False)
    frames = draw(hnp.arrays(np.float64, (length, codec.features), elements=inside))
    return codec, frames


@FEW
@given(clips())
def test_a_round_trip_lands_on_the_grid_within_half_a_step(clip) -> None:
    codec, frames = clip
    decoded = codec.decode_sequence(codec.encode_sequence(frames))
    assert decoded.shape == frames.shape
    np.testing.assert_array_equal(np.rint(decoded / codec.step), np.rint(frames / codec.step))
    assert np.abs(decoded - frames).max() <= codec.step / 2 + 1e-12


@FEW
@given(clips(), st.data())
def test_lost_repeated_or_reordered_packets_decode_exactly_or_not_at_all(clip, data) -> None:
    codec, frames = clip
    packets = codec.encode_sequence(frames)
    reference = codec.decode_sequence(packets)
    indices = st.integers(0, len(packets) - 1)
    arrivals = data.draw(st.lists(indices, max_size=2 * len(packets)))
    decoder = codec.decoder()
    for index in arrivals:
        keyframe = index % codec.keyframe_interval == 0
        try:
            frame = decoder.decode(packets[index])
        except DesyncError:
            assert not keyframe and not decoder.synchronised
            continue
        np.testing.assert_array_equal(frame, reference[index])
    # From the next keyframe on, in order, everything decodes again.
    start = -(-(arrivals[-1] + 1 if arrivals else 0) // codec.keyframe_interval)
    start *= codec.keyframe_interval
    for index in range(start, len(packets)):
        np.testing.assert_array_equal(decoder.decode(packets[index]), reference[index])


def test_a_lost_packet_is_refused_not_misdecoded() -> None:
    # The example the properties generalise, fixed: packet 1 of 3 lost between keyframes.
    codec = KeypointCodec(2, step=0.25, keyframe_interval=3)
    packets = codec.encode_sequence([[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]])
    decoder = codec.decoder()
    decoder.decode(packets[0])
    with pytest.raises(DesyncError):
        decoder.decode(packets[2])
