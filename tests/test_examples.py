"""The example scripts run (at their --quick sizes), print what they promise, write their files."""

from __future__ import annotations

import doctest
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


# The series examples' score table (its header, the GRU-NF row and the three baselines) and
# the verdict under it.
_SCORES_AND_VERDICT = r"CRPS \(scaled\).*\nGRU-NF .*\d\n(.*\d\n){3}verdict: .+ best on "


def _forecast_files(output: str) -> tuple[str, ...]:
    """What a series example writes into its default output folder."""
    return (f"{output}/forecast.png", f"{output}/backtest.csv")


@pytest.mark.parametrize(
    ("script", "expected", "files"),
    [
        ("face_forecast.py", "energy score", ()),
        ("mocap_forecast.py", "energy score", ()),
        ("motion_transfer.py", "PSNR", ("motion_transfer.mp4", "motion_transfer.json")),
        ("streaming.py", "keypoint error", ()),
        ("forecast_vic_elec.py", _SCORES_AND_VERDICT, _forecast_files("forecast_vic_elec")),
        ("forecast_epf.py", _SCORES_AND_VERDICT, _forecast_files("forecast_epf")),
        ("forecast_pedestrian.py", _SCORES_AND_VERDICT, _forecast_files("forecast_pedestrian")),
        ("forecast_macrodata.py", _SCORES_AND_VERDICT, _forecast_files("forecast_macrodata")),
    ],
)
def test_example_runs(script: str, expected: str, files: tuple[str, ...], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(expected, result.stdout), result.stdout[-2000:]
    for name in files:
        assert (tmp_path / name).stat().st_size > 0, name
    if script.startswith("forecast_"):  # the GRU-NF and three baselines, on the same windows
        table = pd.read_csv(tmp_path / files[1])
        windows = table.groupby("model")["cutoff"].apply(lambda cutoff: tuple(sorted(set(cutoff))))
        assert len(windows) == 4 and windows.nunique() == 1 and len(windows.iloc[0]) == 2


def test_series_example_helper_doctests() -> None:
    """examples/_forecasting.py sits outside the doctest paths: its examples run here."""
    spec = importlib.util.spec_from_file_location("_forecasting", EXAMPLES / "_forecasting.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags)
    assert result.attempted >= 3 and result.failed == 0
