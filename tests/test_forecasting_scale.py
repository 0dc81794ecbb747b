"""Long histories and many series: lazily built windows, batches per epoch, batched predictions,
one series, and the memory a long fit takes (real data where it matters: macrodata, vic_elec)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from snfseq import Refinement, SequenceFlow, data
from snfseq.forecasting import FlowForecaster, SeasonalNaiveForecaster
from snfseq.forecasting.scaling import ContextScaling, context_scale, sliding_windows
from snfseq.training import fit_loop
from snfseq.windows import Windows

pytest.importorskip("statsmodels", reason="macrodata ships with statsmodels")

TINY = {"hidden": 8, "layers": 1, "transforms": 2, "flow_hidden": (8,), "condition_size": 8}
QUICK = {"progress": False, "seed": 0}


def test_windows_build_the_sliding_windows_scaled_by_their_own_context(macro) -> None:
    values = macro.to_numpy()
    length, context, series = 12, 8, values.shape[1]
    floor = values.std(0)
    scaler = ContextScaling(context, series, "mean_abs", floor)
    windows = Windows(torch.as_tensor(values.copy()), length, transform=scaler)
    cut = sliding_windows(values, length)
    expected = cut / context_scale(cut[:, :context], "mean_abs", floor)[:, None]
    index = torch.tensor([0, 5, len(cut) - 1])
    assert windows.shape == cut.shape
    np.testing.assert_allclose(windows[index].numpy(), expected[index.numpy()], rtol=1e-12)
    tail = windows[len(cut) - 3 :]
    np.testing.assert_allclose(tail.materialize().numpy(), expected[-3:], rtol=1e-12)
    with pytest.raises(ValueError, match="length must be in"):
        Windows(torch.zeros(5, 2), 6)


def test_batches_per_epoch_continue_one_shuffled_pass_across_epochs() -> None:
    """GluonTS's convention for long histories: an epoch is a fixed number of batches; over
    consecutive epochs every row is drawn once before any is drawn again."""
    rows = torch.arange(20.0)[:, None]
    seen: list[float] = []
    net = torch.nn.Linear(1, 1)

    def loss(batch: torch.Tensor) -> torch.Tensor:
        seen.extend(batch[:, 0].tolist())
        return (net(batch) - batch).square().mean()

    history = fit_loop(
        net, rows, loss, epochs=5, batch_size=4, num_batches_per_epoch=1, progress=False
    )
    assert len(history.train_loss) == 5 and len(seen) == 20
    assert sorted(seen) == list(range(20))  # five batches of four: one whole pass, no repeats


def test_training_on_lazy_windows_equals_training_on_the_materialised_tensor() -> None:
    torch.manual_seed(0)
    series = torch.randn(90, 3).cumsum(0)
    lazy = Windows(series, 12)
    eager = sliding_windows(series.numpy(), 12)
    models = []
    for windows in (lazy, eager):
        torch.manual_seed(1)
        model = SequenceFlow(features=3, hidden=8, layers=1, transforms=2, flow_hidden=(8,))
        history = model.fit(windows, context=8, epochs=2, batch_size=16, seed=0, progress=False)
        models.append((model, history))
    (a, ha), (b, hb) = models
    assert ha.train_loss == pytest.approx(hb.train_loss, rel=1e-5)
    assert ha.val_nll == pytest.approx(hb.val_nll, rel=1e-5)
    assert torch.allclose(a.normalizer.scale, b.normalizer.scale, rtol=1e-5)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-5)


def test_a_long_fit_of_many_series_never_builds_all_windows(tmp_path) -> None:
    """10,000 steps of 200 series in windows of 100 steps would take 800 MB as one tensor; the
    fit keeps the series once (8 MB) and builds batches of windows: its peak memory grew by
    214 MiB here, and by 3,067 MiB when the fit materialised the windows (checked)."""
    script = textwrap.dedent(
        """
        import resource, numpy as np, pandas as pd, torch
        torch.set_num_threads(1)
        from snfseq.forecasting import FlowForecaster
        rng = np.random.default_rng(0)
        values = rng.normal(size=(10_000, 200)).cumsum(0) + 500
        frame = pd.DataFrame(values, index=pd.date_range("2000", periods=10_000, freq="h"))
        frame.columns = [f"s{i}" for i in range(200)]
        def forecaster():
            return FlowForecaster(24, 76, hidden=8, layers=1, transforms=2, flow_hidden=(8,),
                                  condition_size=8)
        forecaster().fit(frame.iloc[:300, :3], epochs=1, progress=False)  # imports torch's rest
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        f = forecaster()
        f.fit(frame, epochs=1, num_batches_per_epoch=3, batch_size=32, val_fraction=0.02,
              progress=False, seed=0)
        print(f.predict(frame, num_samples=4, seed=0).samples.shape[-1])
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    features, grown_mib = (int(line) for line in result.stdout.split())
    assert features == 200
    assert grown_mib < 500, f"the fit grew the process by {grown_mib} MiB"


def test_predict_batch_forecasts_each_history_as_predict_does(macro) -> None:
    naive = SeasonalNaiveForecaster(4, season_length=4).fit(macro)
    histories = [macro.iloc[:-12], macro]
    batch = naive.predict_batch(histories, num_samples=50, seed=0)
    assert [p.index[0] for p in batch] == [macro.index[-12], macro.index[-1] + 1]
    assert [p.context.index[-1] for p in batch] == [macro.index[-13], macro.index[-1]]

    flow = FlowForecaster(4, 12, **TINY).fit(macro, epochs=1, **QUICK)
    drawn = flow.predict_batch(histories, num_samples=400, seed=0)
    assert [p.samples.shape for p in drawn] == [torch.Size([400, 1, 4, macro.shape[1]])] * 2
    for prediction, history in zip(drawn, histories, strict=True):
        alone = flow.predict(history, num_samples=400, seed=1).samples
        spread = alone.std(0)
        gap = (prediction.samples.mean(0) - alone.mean(0)).abs()
        assert bool((gap < 0.5 * spread + 1e-6).all())  # same distribution, other draws
    with pytest.raises(ValueError, match="one table per history: 1 for 2"):
        flow.predict_batch(histories, covariates=[None])
    with pytest.raises(ValueError, match=r"histories\[1\] has 3 timestamps"):
        flow.predict_batch([macro, macro.iloc[:3]])


def test_one_series_trains_a_spline_flow_whose_held_out_likelihood_improves() -> None:
    vic = data.load_series("vic_elec")
    demand, temperature = vic.target.iloc[-14 * 48 :], vic.covariates.iloc[-14 * 48 :]
    forecaster = FlowForecaster(48, 96, **TINY)
    forecaster.fit(demand.iloc[:-48], temperature, epochs=3, lr=3e-3, **QUICK)
    assert forecaster.model_ is not None and forecaster.model_.config.flow == "nsf"
    nll = forecaster.fit_history_.val_nll
    assert nll[-1] < nll[0]
    prediction = forecaster.predict(demand.iloc[:-48], temperature, num_samples=30, seed=0)
    assert prediction.samples.shape == (30, 1, 48, 1)
    assert list(prediction.median().columns) == ["demand"]
    refined = forecaster.predict(
        demand.iloc[:-48], temperature, num_samples=30, seed=0, refinement=Refinement.paper()
    )
    assert refined.log_weights is not None and torch.isfinite(refined.samples).all()
    with pytest.raises(ValueError, match="flow 'realnvp' needs at least 2 features"):
        FlowForecaster(48, 96, flow="realnvp", **TINY).fit(demand, epochs=1, **QUICK)
