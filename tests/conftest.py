"""Shared fixtures: one tiny model trained once on real face landmarks."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch


def pytest_configure(config: pytest.Config) -> None:
    # Extracted landmarks are cached; keep the test run's cache out of the user's home.
    os.environ.setdefault("SNFSEQ_CACHE_DIR", tempfile.mkdtemp(prefix="snfseq-test-cache-"))


CONTEXT, HORIZON = 8, 8


@pytest.fixture(autouse=True)
def single_thread():
    """Test tensors are small: one thread is as fast, and immune to oversubscribed cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def face_split() -> dict[str, torch.Tensor]:
    """Real face landmarks (10-point layout, x/y): train/test windows split in time."""
    pytest.importorskip("mediapipe", reason="real face landmarks need the landmark extractor")
    from snfseq import data

    sequences = data.face_sequences(layout="mesh10", progress=False)
    train, test = data.split_sequences(sequences, (0.8, 0.2), by="time")
    return {
        "train": data.make_windows(train, CONTEXT, HORIZON, stride=2),
        "test": data.make_windows(test, CONTEXT, HORIZON, stride=2),
    }


@pytest.fixture(scope="session")
def tiny_model_config() -> dict:
    """Constructor arguments of the tests' tiny SequenceFlow (20 face features)."""
    return {
        "features": 20,
        "hidden": 48,
        "layers": 1,
        "dropout": 0.0,
        "condition_size": 16,
        "transforms": 3,
        "flow_hidden": (48, 48),
    }


@pytest.fixture(scope="session")
def trained_model(face_split: dict[str, torch.Tensor], tiny_model_config: dict):  # noqa: ANN201
    """A tiny SequenceFlow trained on real face landmarks (shared; do not mutate)."""
    from snfseq import SequenceFlow

    torch.manual_seed(0)
    model = SequenceFlow(**tiny_model_config)
    model.fit(
        face_split["train"], context=CONTEXT, epochs=25, batch_size=32, lr=3e-3, progress=False
    )
    return model


@pytest.fixture(scope="module")
def macro():
    """statsmodels' macrodata as the forecasting tests read it: a wide DataFrame of 12 US
    quarterly series (GDP near 1e4 beside rates near 1) on a PeriodIndex, 1959Q1-2009Q3; one
    copy per test module."""
    pytest.importorskip("statsmodels", reason="macrodata ships with statsmodels")
    from snfseq import data

    return data.load_series("macrodata").target
