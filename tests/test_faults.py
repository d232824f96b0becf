"""Failures that speak (issue 11): a lost rank stops the others within the process-group timeout; a failed
checkpoint write keeps the previous checkpoint and says so; a truncated or foreign checkpoint is one error naming
the file; a /dev/shm too small for the pool is a clear error before the first step. (A killed simulation worker
costs one batch: test_interactive_loop.py.)"""

from __future__ import annotations

import errno
import os
import signal
import time

import pytest
import torch

from helpers import DEBUG_CFG, PY, REPO, prepared_dataset, read_lines, run, slurm_ranks, wait_for_lines
from nninteractive_train.config import load_config, save_config

pytestmark = pytest.mark.slow
DS = 990
TIMEOUT_S = 10


OVERRIDES = ["training.num_epochs=100", "training.log_steps=true", f"training.dist_timeout_s={TIMEOUT_S}"]


def lose_rank_1(args: list[str], run_dir, sig: int) -> tuple[int, str, float]:
    """Start two SLURM-style ranks of ``python ARGS``, send ``sig`` to rank 1 after three iterations, and return
    rank 0's exit status, its output and the seconds it took to end after the signal."""
    procs = slurm_ranks(args)
    try:
        wait_for_lines(run_dir / "iterations.jsonl", 3, procs)
        t0 = time.time()
        procs[1].send_signal(sig)
        out = procs[0].communicate(timeout=TIMEOUT_S + 60)[0]
        elapsed = time.time() - t0
    finally:
        procs[1].kill()
        procs[1].communicate()
    return procs[0].returncode, out, elapsed


@pytest.mark.parametrize("how", ["killed", "hung"])
def test_a_lost_rank_stops_the_others(tmp_path, how):
    """Rank 1 is killed (its connections close) or stopped (it stays connected and silent): rank 0 exits with
    one clear error, at once or within the process-group timeout, instead of hanging."""
    prepared_dataset(DS)
    run_dir = tmp_path / "run"
    status, out, elapsed = lose_rank_1([str(REPO / "tests" / "_train_worker.py"), str(DS), str(DEBUG_CFG),
                                        str(run_dir), str(tmp_path / "out"), *OVERRIDES], run_dir,
                                       signal.SIGKILL if how == "killed" else signal.SIGSTOP)
    assert status == 1, out[-3000:]
    assert "error: rank 0 of 2 lost contact with the other ranks" in out and "--resume" in out, out[-3000:]
    assert elapsed < TIMEOUT_S + 30, elapsed
    if how == "hung":
        assert "Timed out" in out


def test_the_command_ends_with_its_error_line_when_a_rank_is_lost(tmp_path):
    """The same through ``nnInteractive_train`` itself: rank 0 prints the command's one error line and exits with
    status 2 (as for every error a user can act on), not an abort from tearing down the broken process group."""
    prepared_dataset(DS)
    run_dir = tmp_path / "run"
    status, out, _ = lose_rank_1(["-m", "nninteractive_train.cli.train", "-d", str(DS), "--config", str(DEBUG_CFG),
                                  "--output", str(run_dir), "--cpu", *OVERRIDES], run_dir, signal.SIGKILL)
    assert status == 2, out[-3000:]
    assert ("nnInteractive_train: error: rank 0 of 2 lost contact with the other ranks" in out
            and out.rstrip().endswith("resume from the last checkpoint with --resume")), out[-3000:]


def _train_in_process(run_dir, *overrides):
    from nninteractive_train.training.launch import train

    return train(DS, load_config(DEBUG_CFG, list(overrides)), run_dir, use_cuda=False)


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    """The disk fills up after the first checkpoint_latest.pth: the next one fails (the log says so, the old file
    stays, training goes on); the final one fails too, so checkpoint_latest.pth is kept and the run ends with an
    error that says how to continue."""
    from nninteractive_train.training.loop import TrainingError

    prepared_dataset(DS)
    run_dir = tmp_path / "run"
    real_save, latest_writes = torch.save, []

    def disk_full_after_first_latest(obj, f, *a, **k):
        name = os.path.basename(str(f))
        if "checkpoint_latest" in name:
            latest_writes.append(name)
        if ("checkpoint_latest" in name and len(latest_writes) > 1) or "checkpoint_final" in name:
            real_save(obj, f, *a, **k)  # a partial file, then the error
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", disk_full_after_first_latest)
    with pytest.raises(TrainingError, match="final checkpoint failed.*checkpoint_latest.pth is kept"):
        _train_in_process(run_dir, "training.num_epochs=3", "training.iterations_per_epoch=2",
                          "training.save_every=1")
    monkeypatch.undo()
    assert len(latest_writes) == 2
    latest = torch.load(run_dir / "checkpoint_latest.pth", weights_only=False)
    assert latest["current_epoch"] == 1  # the first one, written after epoch 0
    assert not (run_dir / "checkpoint_final.pth").exists() and not list(run_dir.glob(".*.tmp"))
    log = next(run_dir.glob("training_log_*.txt")).read_text()
    assert (f"WARNING: writing {run_dir / 'checkpoint_latest.pth'} failed: No space left on device (errno 28); "
            f"the previous checkpoint_latest.pth is kept unchanged") in log
    assert [m["epoch"] for m in read_lines(run_dir / "metrics.jsonl")] == [0, 1, 2]  # training went on


@pytest.mark.parametrize("kind, message", [
    ("truncated", "the checkpoint cannot be read (truncated or not a torch checkpoint"),
    ("foreign", "not a training checkpoint of nninteractive_train (missing network_weights"),
])
def test_a_bad_checkpoint_on_resume_is_one_clear_error(tmp_path, kind, message):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_config(load_config(DEBUG_CFG), run_dir / "config.yaml")
    latest = run_dir / "checkpoint_latest.pth"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, latest)  # e.g. a plain PyTorch checkpoint
    if kind == "truncated":
        latest.write_bytes(latest.read_bytes()[:1000])
    res = run([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--output", str(run_dir), "--resume"],
              check=False, timeout=120)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnInteractive_train: error: "), res.stderr[-2000:]
    assert str(latest) in lines[0] and message in lines[0]


def test_a_small_dev_shm_fails_before_the_first_step(tmp_path, monkeypatch):
    """/dev/shm cannot hold the pool's slots (simulated: reserving its pages fails with ENOSPC, as a full tmpfs
    does): training stops at start with the free space and the remedy, before any step."""
    from nninteractive_train.paths import SetupError

    prepared_dataset(DS)

    def full(fd, offset, size):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    run_dir = tmp_path / "run"
    with pytest.raises(SetupError, match=r"rank 0: cannot reserve .* MiB of shared memory .*/dev/shm has"):
        _train_in_process(run_dir, "interaction.num_sim_workers=1", "training.log_steps=true")
    assert not (run_dir / "iterations.jsonl").exists() and not (run_dir / "metrics.jsonl").exists()
