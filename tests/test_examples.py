"""The example scripts run (at their --quick sizes), print what they promise, write their files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    ("script", "expected", "files"),
    [
        ("face_forecast.py", "energy score", ()),
        ("mocap_forecast.py", "energy score", ()),
        ("motion_transfer.py", "PSNR", ("motion_transfer.mp4", "motion_transfer.json")),
        ("streaming.py", "keypoint error", ()),
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
    assert expected in result.stdout
    for name in files:
        assert (tmp_path / name).stat().st_size > 0, name
