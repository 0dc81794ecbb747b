"""Diagnostics: R-hat/ESS against independent references, chains, DataTree layout, plots.

Statistical checks use fixed seeds; tolerances are stated next to each assertion.
"""

import matplotlib

matplotlib.use("Agg")

import arviz_base
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from scipy import stats

from snfseq import SequenceFlow, diagnostics, kernels, snf
from snfseq.energy import Gaussian, StandardNormal
from snfseq.flows import build_flow
from snfseq.forecast import Forecast
from snfseq.snf import Refinement

# arviz-plots 0.8 registers a matplotlib scale the pending-deprecated way; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    windows = torch.randn(48, 10, 4).cumsum(1)
    flow_model = SequenceFlow(features=4, hidden=8, layers=1, transforms=3, flow_hidden=(8,))
    flow_model.fit(windows, context=5, epochs=2, progress=False)
    return flow_model, windows


def _iid_tree(chains: int, draws: int, shift: np.ndarray | None = None, seed: int = 0):
    values = np.random.default_rng(seed).normal(size=(chains, draws, 3))
    if shift is not None:
        values = values + shift[:, None, None]
    return arviz_base.from_dict({"posterior": {"z": values}}, dims={"z": ["feature"]})


def _reference_rank_rhat(x: np.ndarray) -> float:
    """Rank-normalised split R-hat of Vehtari et al. (2021), eq. 4.2 and 4.3, for [C, N].

    Chains are split in halves first (the middle draw of an odd chain dropped), then the
    split draws are rank-normalised, plain and folded about their median.
    """
    half = x.shape[1] // 2
    split = np.concatenate([x[:, :half], x[:, -half:]])

    def normal_scores(y: np.ndarray) -> np.ndarray:
        ranks = stats.rankdata(y, method="average").reshape(y.shape)
        return stats.norm.ppf((ranks - 3 / 8) / (y.size + 1 / 4))

    def rhat(y: np.ndarray) -> float:
        n = y.shape[1]
        within = y.var(1, ddof=1).mean()
        between = n * y.mean(1).var(ddof=1)
        return float(np.sqrt(((n - 1) / n * within + between / n) / within))

    folded = np.abs(split - np.median(split))
    return max(rhat(normal_scores(split)), rhat(normal_scores(folded)))


# ---------------------------------------------------------------------- R-hat and ESS


def test_rhat_matches_independent_reference():
    tree = _iid_tree(4, 101, shift=np.array([0.0, 0.0, 0.3, -0.2]))
    detail = diagnostics.summary(tree).detail
    values = tree["posterior"]["z"].values
    for feature in range(3):
        expected = _reference_rank_rhat(values[:, :, feature])
        assert detail["r_hat"].iloc[feature] == pytest.approx(expected, rel=1e-6)


def test_iid_chains_have_rhat_one_and_ess_near_draws():
    result = diagnostics.summary(_iid_tree(4, 500))
    # Independent draws: R-hat within 0.01 of 1, bulk ESS within 20% of the 2000 draws.
    assert result.table["r_hat_max"].iloc[0] < 1.01
    assert (result.detail["ess_bulk"] / 2000).between(0.8, 1.2).all()
    assert (result.detail["ess_tail"] / 2000).between(0.6, 1.4).all()


@pytest.mark.parametrize(
    "kernel",
    [
        kernels.RandomWalkMetropolis(step_size=0.6, adapt_step_size=False),
        kernels.MALA(step_size=0.08, adapt_step_size=False),
        # A trajectory of a quarter period of the target's oscillation: near-independent
        # draws (half a period would only mirror the state and never mix).
        kernels.HMC(step_size=0.25, num_steps=3, adapt_step_size=False),
    ],
    ids=["rwm", "mala", "hmc"],
)
def test_well_mixed_chains_on_a_gaussian(kernel):
    target = Gaussian(torch.tensor([1.0, -2.0, 0.5]), 0.5)
    init = 1.0 + 0.5 * torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    tree = diagnostics.sample_chains(kernel, target, init, num_draws=1000, num_warmup=50, seed=2)
    result = diagnostics.summary(tree)
    detail = result.detail
    # Over 20 seeds the worst R-hat was 1.032 (random walk), 1.012 (MALA), 1.003 (HMC).
    assert result.table["r_hat_max"].iloc[0] < 1.05
    # 6000 draws per feature: a sound kernel keeps a few percent of them as effective
    # draws (the worst seen: 283 for the random walk), and none makes more than 2x.
    for column in ("ess_bulk", "ess_tail"):
        assert detail[column].between(200, 12000).all()
    # The posterior mean within 4 Monte Carlo standard errors of the truth.
    error = (detail["mean"] - np.array([1.0, -2.0, 0.5])).abs()
    assert (error < 4 * detail["mcse_mean"]).all()
    assert 0.2 < result.table["acceptance"].iloc[0] <= 1.0


def test_rhat_flags_chains_started_apart():
    kernel = kernels.RandomWalkMetropolis(step_size=0.05, adapt_step_size=False)
    init = torch.tensor([5.0, 5.0, -5.0, -5.0]).reshape(4, 1).expand(4, 2).contiguous()
    tree = diagnostics.sample_chains(kernel, StandardNormal(), init, num_draws=100, seed=0)
    # Steps of 0.05 cannot close a gap of 10 in 100 draws: R-hat must be far above 1.1.
    assert diagnostics.summary(tree).table["r_hat_max"].iloc[0] > 1.5


def test_kish_ess_of_weights():
    log_weights = torch.tensor([[0.0, 1.0], [0.5, 1.0], [-1.0, 1.0], [2.0, 1.0]])
    fc = Forecast(samples=torch.zeros(4, 2, 3, 2), log_weights=log_weights)
    trace = snf.Trace(
        states=torch.randn(3, 1, 2, 4, 2, 2),
        energies=torch.rand(3, 1, 2, 4, 2),
        accepted=torch.rand(3, 1, 2, 4, 2) < 0.5,
        blocks=[1],
        lam=torch.ones(1),
        step_size=torch.full((1,), 0.1),
        has_time=True,
    )
    fc.trace = trace
    with pytest.warns(UserWarning, match="run_chains"):
        table = diagnostics.summary(fc).table
    w = np.exp(log_weights.numpy())
    expected = w.sum(0) ** 2 / (w**2).sum(0)
    kish = table["kish_ess"].groupby(level="series").first().to_numpy()
    np.testing.assert_allclose(kish, expected, rtol=1e-6)
    assert kish[1] == pytest.approx(4.0)


# ---------------------------------------------------------------------- run_chains


def test_run_chains_layout_and_energies(model):
    flow_model, windows = model
    refinement = Refinement(kernel="mala", step_size=0.1, after=[0, 2], lam=[0.5, 1.0])
    tree = diagnostics.run_chains(
        flow_model, windows[:3, :5], refinement, num_chains=5, num_draws=7, num_warmup=2, seed=0
    )
    posterior, sample_stats = tree["posterior"], tree["sample_stats"]
    assert posterior["y"].dims == ("chain", "draw", "block", "series", "feature")
    assert dict(posterior.sizes) == {"chain": 5, "draw": 7, "block": 2, "series": 3, "feature": 4}
    assert posterior["block"].values.tolist() == [0, 1]
    assert posterior["layer"].values.tolist() == [0, 2]
    assert posterior["lam"].values.tolist() == [0.5, 1.0]
    for name in ("accepted", "energy", "step_size"):
        assert sample_stats[name].dims == ("chain", "draw", "block", "series")
    assert sample_stats["accepted"].dtype == bool
    np.testing.assert_allclose(sample_stats["step_size"].values, 0.1)
    assert posterior.attrs["sampling_time"] > 0 and posterior.attrs["kernel"] == "mala"

    # The recorded energy is the block energy of the recorded state (rows chain * B + series).
    c, step = flow_model.first_step(windows[:3, :5], num_samples=5)
    target = refinement.target_for(step)
    for j, k in enumerate([0, 2]):
        energy = refinement.block_energy(flow_model.flow, k, c, target, [0.5, 1.0][j])
        states = torch.as_tensor(posterior["y"].values[:, :, j]).transpose(0, 1).reshape(7, 15, 4)
        recorded = sample_stats["energy"].values[:, :, j].transpose(1, 0, 2).reshape(7, 15)
        np.testing.assert_allclose(energy(states).numpy(), recorded, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel", ["rwm", "mala", "hmc"])
def test_diagnostic_chains_are_the_chains_a_forecast_runs(model, kernel):
    """Same seed, same code: the diagnostic chains are draw for draw the forecast's own."""
    flow_model, windows = model
    refinement = Refinement(kernel=kernel, steps=3, step_size=0.2, after=[0, 2])
    context = windows[:2, :5]
    fc = flow_model.forecast(
        context, horizon=2, num_samples=6, refinement=refinement, record_trace=True, seed=9
    )
    tree = diagnostics.run_chains(
        flow_model, context, refinement, num_chains=6, num_draws=3, seed=9
    )
    # Forecast trace: [time, block, step, sample, series, D]; chains: [chain, draw, block, ...].
    forecast_chains = fc.trace.states[0].permute(2, 1, 0, 3, 4).numpy()
    np.testing.assert_array_equal(tree["posterior"]["y"].values, forecast_chains)
    forecast_energies = fc.trace.energies[0].permute(2, 1, 0, 3).numpy()
    np.testing.assert_array_equal(tree["sample_stats"]["energy"].values, forecast_energies)
    # Longer diagnostic chains start from the same draws: their first block's first draws agree.
    longer = diagnostics.run_chains(
        flow_model, context, refinement, num_chains=6, num_draws=8, seed=9
    )
    np.testing.assert_array_equal(
        longer["posterior"]["y"].values[:, :3, 0], tree["posterior"]["y"].values[:, :, 0]
    )


def test_run_chains_is_reproducible_and_chains_differ(model):
    flow_model, windows = model
    args = (flow_model, windows[:2, :5], Refinement.paper())
    first = diagnostics.run_chains(*args, num_chains=3, num_draws=5, seed=4)
    again = diagnostics.run_chains(*args, num_chains=3, num_draws=5, seed=4)
    np.testing.assert_array_equal(first["posterior"]["y"].values, again["posterior"]["y"].values)
    starts = first["posterior"]["y"].values[:, 0, 0, 0]
    assert not np.allclose(starts[0], starts[1])


def test_run_chains_rejects_bad_input(model):
    flow_model, windows = model
    with pytest.raises(ValueError, match="faithful"):
        diagnostics.run_chains(flow_model, windows[:1, :5], Refinement.paper(faithful=True))
    with pytest.raises(ValueError, match="no block"):
        diagnostics.run_chains(flow_model, windows[:1, :5], Refinement(after=[]))
    with pytest.raises(ValueError, match="num_chains"):
        diagnostics.run_chains(flow_model, windows[:1, :5], Refinement(), num_chains=0)


# ---------------------------------------------------------------------- to_datatree


def test_forecast_trace_to_datatree(model):
    flow_model, windows = model
    fc = flow_model.forecast(
        windows[:2, :5], horizon=3, num_samples=6, refinement=Refinement.paper(), record_trace=True
    )
    tree = diagnostics.to_datatree(fc, feature_names=["a", "b", "c", "d"])
    y = tree["posterior"]["y"]
    assert y.dims == ("chain", "draw", "block", "series", "time", "feature")
    assert dict(y.sizes) == {
        "chain": 6,
        "draw": 2,
        "block": 3,
        "series": 2,
        "time": 3,
        "feature": 4,
    }
    assert tree["posterior"]["feature"].values.tolist() == ["a", "b", "c", "d"]
    stats_ = tree["sample_stats"]
    assert stats_["log_weight"].dims == ("chain", "series")
    assert stats_["step_log_weight"].dims == ("chain", "series", "time")
    np.testing.assert_allclose(stats_["log_weight"].values, fc.log_weights.numpy())
    # Sample s, series b, time t, block j, step m of the trace is chain s, draw m.
    np.testing.assert_allclose(y.values[4, 1, 2, 1, 0], fc.trace.states[0, 2, 1, 4, 1].numpy())
    np.testing.assert_array_equal(
        stats_["accepted"].values[3, 0, 1, 0, 2], fc.trace.accepted[2, 1, 0, 3, 0].numpy()
    )
    with pytest.warns(UserWarning, match="draws per chain"):
        result = diagnostics.summary(tree)
    assert result.table.index.names == ["block", "series", "time"]
    assert {"kish_ess", "step_kish_ess", "acceptance"} <= set(result.table.columns)


def test_snf_sample_and_errors_to_datatree():
    flow = build_flow("realnvp", features=2, condition_features=3, transforms=2, hidden=(8,))
    result = snf.sample(
        flow, Gaussian(torch.zeros(2)), Refinement(), 5, condition=torch.randn(4, 3), record=True
    )
    tree = diagnostics.to_datatree(result)
    assert tree["posterior"]["y"].dims == ("chain", "draw", "block", "series", "feature")
    assert tree["sample_stats"]["log_weight"].dims == ("chain", "series")
    assert diagnostics.to_datatree(tree) is tree
    with pytest.raises(ValueError, match="record_trace"):
        diagnostics.to_datatree(Forecast(samples=torch.zeros(3, 1, 2, 2)))
    with pytest.raises(TypeError, match="Forecast, SNFSample, Trace or DataTree"):
        diagnostics.to_datatree(torch.zeros(3))


def test_sample_chains_layout_and_errors():
    kernel = kernels.MALA(step_size=0.2, adapt_step_size=False)
    init = torch.randn(3, 2, 5, 4)
    step = torch.full((3, 2, 5), 0.2)
    tree = diagnostics.sample_chains(
        kernel, StandardNormal(), init, 6, step_size=step, dims=["a", "b"], var_name="x"
    )
    assert tree["posterior"]["x"].dims == ("chain", "draw", "a", "b", "feature")
    assert tree["sample_stats"]["step_size"].shape == (3, 6, 2, 5)
    table = diagnostics.summary(tree).table
    assert table.index.names == ["a", "b"] and len(table) == 10
    with pytest.raises(ValueError, match="init"):
        diagnostics.sample_chains(kernel, StandardNormal(), torch.randn(4), 5)
    with pytest.raises(ValueError, match="dims"):
        diagnostics.sample_chains(kernel, StandardNormal(), init, 5, dims=["a"])
    with pytest.raises(ValueError, match="potential"):
        diagnostics.sample_chains(kernel, None, init, 5)


# ---------------------------------------------------------------------- summary and plots


def test_summary_table_and_printing(model):
    flow_model, windows = model
    tree = diagnostics.run_chains(
        flow_model, windows[:2, :5], Refinement.paper(), num_chains=4, num_draws=20, seed=1
    )
    result = diagnostics.summary(tree)
    assert result.table.index.names == ["block", "series"] and len(result.table) == 3 * 2
    assert list(result.table.columns) == [
        "layer",
        "lam",
        "r_hat_max",
        "ess_bulk_min",
        "ess_tail_min",
        "mcse_mean_max",
        "acceptance",
    ]
    assert result.detail.index.names == ["block", "series", "feature"]
    assert len(result.detail) == 3 * 2 * 4
    per_block = result.detail.groupby(level=["block", "series"])["r_hat"].max()
    np.testing.assert_allclose(per_block.to_numpy(), result.table["r_hat_max"].to_numpy())
    text = str(result)
    assert text.startswith("y: 4 chains x 20 draws") and "r_hat_max" in text
    assert "<table" in result._repr_html_()


def test_plots_return_figures(model):
    flow_model, windows = model
    tree = diagnostics.run_chains(
        flow_model, windows[:2, :5], Refinement.paper(), num_chains=3, num_draws=12, seed=0
    )
    fc = flow_model.forecast(
        windows[:2, :5], horizon=5, num_samples=8, refinement=Refinement.paper(), record_trace=True
    )
    figures = [
        diagnostics.plot_trace(tree, blocks=[0, 2], features=[1]),
        diagnostics.plot_rank(tree, features=1),
        diagnostics.plot_acceptance(tree),
        diagnostics.plot_acceptance(fc),
        diagnostics.plot_fan(fc, truth=windows[:2, 5:], context=windows[:2, :5], series=1),
        diagnostics.plot_fan(fc, features=[0, 3], weighted=True, quantiles=(0.1, 0.9)),
    ]
    assert all(isinstance(figure, Figure) for figure in figures)
    assert len(figures[4].axes) == 4 and len(figures[5].axes) == 2
    with pytest.raises(ValueError, match="quantiles"):
        diagnostics.plot_fan(fc, quantiles=(0.9, 0.1))
    with pytest.raises(ValueError, match="truth"):
        diagnostics.plot_fan(fc, truth=windows[:2, 5:8])
    with pytest.raises(ValueError, match="feature"):
        diagnostics.plot_trace(tree, features=[7])


def test_diagnostic_chains_of_a_model_with_covariates() -> None:
    run_chains = diagnostics.run_chains
    torch.manual_seed(0)
    z = torch.randn(24, 9, 1)
    windows = torch.cat([torch.randn(24, 9, 2).cumsum(1), z], -1)[..., :2] + z
    model = SequenceFlow(features=2, hidden=8, layers=1, transforms=2, covariates=1)
    model.fit(windows, context=4, epochs=1, progress=False, covariates=z)
    with pytest.raises(ValueError, match="covariates"):
        run_chains(model, windows[:2, :4], Refinement.paper(), num_draws=5, seed=0)
    tree = run_chains(
        model, windows[:2, :4], Refinement.paper(), num_draws=5, seed=0, covariates=z[:2, :5]
    )
    # The chains depend on the first forecast frame's covariate, as the forecast's do.
    other = run_chains(
        model, windows[:2, :4], Refinement.paper(), num_draws=5, seed=0, covariates=-z[:2, :5]
    )
    assert tree["posterior"]["y"].shape == other["posterior"]["y"].shape
    assert not np.allclose(tree["posterior"]["y"].values, other["posterior"]["y"].values)


def test_blocks_on_one_layer_keep_distinct_labels(model):
    """Annealing blocks on the base noise (``after=[-1] * 3``) stay three selectable blocks."""
    flow_model, windows = model
    refinement = Refinement(after=[-1, -1, -1], lam=[0.2, 0.6, 1.0], prior="flow")
    tree = diagnostics.run_chains(
        flow_model, windows[:2, :5], refinement, num_chains=3, num_draws=4, seed=0
    )
    posterior = tree["posterior"]
    assert posterior["block"].values.tolist() == [0, 1, 2]
    assert posterior["layer"].values.tolist() == [-1, -1, -1]
    assert float(posterior["lam"].sel(block=2)) == 1.0
    table = diagnostics.summary(tree).table
    assert table.index.get_level_values("block").unique().tolist() == [0, 1, 2]
