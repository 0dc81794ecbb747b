"""Training across processes and after a kill: torchrun with two CPU processes (gloo) trains
what one process trains with the same global batch and seed; a run killed with SIGKILL
resumes from its last checkpoint to exactly the uninterrupted result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from snfseq import SequenceFlow, resume

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"features": 3, "hidden": 12, "layers": 1, "transforms": 2, "flow_hidden": (12,)}

TRAIN = textwrap.dedent(
    """
    import sys, torch
    from snfseq import SequenceFlow
    torch.set_num_threads(1)
    windows = torch.randn(160, 10, 3, generator=torch.Generator().manual_seed(5)).cumsum(1)
    torch.manual_seed(0)
    model = SequenceFlow(**{sizes})
    rows = []  # the training rows this process computes a loss on
    forced = model._teacher_forced
    def counted(windows, *args):
        if model.training:
            rows.append(windows.shape[0])
        return forced(windows, *args)
    model._teacher_forced = counted
    history = model.fit(windows, context=4, progress=False, device="cpu", **{options})
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        raise SystemExit("fit left the process group open")
    import os
    rank = int(os.environ.get("RANK", "0"))
    torch.save({{"state": model.state_dict(), "val_loss": history.val_loss, "rows": sum(rows)}},
               sys.argv[1] + str(rank))
    """
)


def _script(tmp_path: Path, sizes=SIZES, **options) -> Path:
    path = tmp_path / "train.py"
    path.write_text(TRAIN.format(sizes=sizes, options=options))
    return path


def _train_here(sizes=SIZES, **options):
    windows = torch.randn(160, 10, 3, generator=torch.Generator().manual_seed(5)).cumsum(1)
    torch.manual_seed(0)  # the initial weights
    model = SequenceFlow(**sizes)
    history = model.fit(windows, context=4, progress=False, device="cpu", **options)
    return model, history


def _environment() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def test_two_gloo_processes_train_what_one_process_trains(tmp_path):
    # Batches of 15: the ranks take 8 and 7 rows, so DDP's plain average of their gradients
    # must be weighted to give the gradient of the whole batch.
    options = {"epochs": 3, "batch_size": 15, "seed": 0}
    out = tmp_path / "ddp.pt"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node=2", str(_script(tmp_path, **options)), str(out)]
    done = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    distributed = torch.load(f"{out}0", weights_only=True)
    other = torch.load(f"{out}1", weights_only=True)
    assert distributed["rows"] + other["rows"] == 3 * 144  # each row once per epoch...
    assert abs(distributed["rows"] - other["rows"]) <= 3 * 10  # ...by one rank (8 / 7 a batch)
    single, history = _train_here(**options)
    # No wrapper in the state dict: the same keys as a model trained in one process.
    assert list(distributed["state"]) == list(single.state_dict())
    for name, value in single.state_dict().items():
        # Each rank averages half of every batch: only the order of float sums differs.
        torch.testing.assert_close(distributed["state"][name], value, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        torch.tensor(distributed["val_loss"]), torch.tensor(history.val_loss), rtol=1e-4, atol=1e-5
    )


def test_a_run_killed_mid_training_resumes_to_the_uninterrupted_result(tmp_path):
    checkpoint = tmp_path / "run.pt"
    # Two GRU layers: dropout between them draws from torch's stream, which must resume too;
    # the first checkpoint falls in the second epoch (18 steps each), after a reshuffle.
    sizes = dict(SIZES, layers=2)
    options = {"sizes": sizes, "epochs": 12, "batch_size": 8, "checkpoint_every": 20}
    script = _script(tmp_path, checkpoint=str(checkpoint), **options)
    killed = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "killed.pt")],
        env=_environment(),
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.exists() and killed.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        os.kill(killed.pid, signal.SIGKILL)
    finally:
        killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.read().decode()[-2000:]
    _, state = resume.load(checkpoint)
    steps = 12 * 18  # 144 training windows in batches of 8
    assert 0 < state["epoch"] * 18 + state["step"] < steps and not state["finished"]

    resumed, resumed_history = _train_here(checkpoint=checkpoint, resume=True, **options)
    uninterrupted, history = _train_here(sizes, epochs=12, batch_size=8)
    for name, value in uninterrupted.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name
    assert resumed_history.train_loss == history.train_loss
    assert resumed_history.val_loss == history.val_loss
    # A finished run resumes to itself without training again.
    again, again_history = _train_here(checkpoint=checkpoint, resume=True, **options)
    assert again_history.train_loss == history.train_loss
    assert all(torch.equal(again.state_dict()[k], v) for k, v in resumed.state_dict().items())


def test_checkpoint_options_need_a_file():
    with pytest.raises(ValueError, match="checkpoint file"):
        _train_here(epochs=1, resume=True)
    with pytest.raises(ValueError, match="checkpoint_every"):
        _train_here(epochs=1, checkpoint="x.pt", checkpoint_every=0)
