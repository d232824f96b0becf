"""Issue 5, the interactive loop end to end on the CPU: follow-up batches from a 2-worker pool at the expected
rate, a killed pool worker, DDP with the pool, and the in-training interactive validation (issue 6)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from helpers import DEBUG_CFG, PY, REPO, prepared_dataset, run
from nninteractive_train.training.trainer import cpu_has_bf16

pytestmark = pytest.mark.slow
DS = 990


def _metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []


def _train(run_dir, *overrides):
    return run([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--config", str(DEBUG_CFG),
                "--output", str(run_dir), *overrides])


def test_followups_from_two_workers(tmp_path):
    prepared_dataset(DS)
    _train(tmp_path / "r", "interaction.num_sim_workers=2", "training.num_epochs=1",
           "training.iterations_per_epoch=40", "interaction.p_followup_start=0.5", "interaction.p_followup_end=0.5")
    (m,) = _metrics(tmp_path / "r")
    assert m["p_followup"] == 0.5
    # about half the iterations train on a follow-up batch (binomial sd ≈ 0.08 at 40 iterations)
    assert 0.2 <= m["followup_fraction"] <= 0.8, m
    assert m["mean_interactions"] > 1.0
    assert m["sim_dropped"] == 0 and m["sim_latency_ms"] is not None
    for key in ("train_loss", "data_wait_ms", "iteration_ms", "sim_submit_ms"):
        assert math.isfinite(m[key]), key
    assert 0.0 <= m["data_wait_share"] < 1.0, m


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_killed_pool_worker_does_not_stop_training(tmp_path):
    prepared_dataset(DS)
    run_dir = tmp_path / "r"
    proc = subprocess.Popen([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--config", str(DEBUG_CFG),
                             "--output", str(run_dir), "interaction.num_sim_workers=2", "training.num_epochs=4",
                             "training.iterations_per_epoch=12", "interaction.p_followup_start=0.75"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    workers: list[int] = []
    while not workers and proc.poll() is None and time.time() < deadline:
        if _metrics(run_dir):
            workers = [c for c in _children(proc.pid) if "spawn_main" in _cmdline(c)]
        time.sleep(0.2)
    assert workers, "no pool workers found"
    os.kill(workers[0], signal.SIGKILL)
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out[-3000:]
    lines = _metrics(run_dir)
    assert [l["epoch"] for l in lines] == [0, 1, 2, 3]
    assert lines[-1]["sim_restarted_workers"] >= 1
    assert (run_dir / "checkpoint_final.pth").is_file()


def test_two_rank_gloo_with_pool(tmp_path, repo):
    import socket

    prepared_dataset(DS)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ranks"
    run([PY, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2", "--rdzv-backend", "c10d",
         "--rdzv-endpoint", f"127.0.0.1:{port}", str(repo / "tests" / "_train_worker.py"), str(DS), str(DEBUG_CFG),
         str(tmp_path / "run"), str(out), "interaction.num_sim_workers=1", "training.iterations_per_epoch=10"])
    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=False)["weights"] for r in (0, 1))
    assert all(torch.equal(v, r1[k]) for k, v in r0.items())
    assert sum(l["followup_fraction"] for l in _metrics(tmp_path / "run")) > 0


def test_interactive_validation_is_logged(tmp_path):
    """Also: the learning curve's keys, held-out raw cases as the validation set, AdamW, channels-last and
    bfloat16 autocast (the demo's options; float32 with a log line on a CPU without native bf16), without deep
    supervision and with the first 2D prompts drawn off-centre (ablation options)."""
    prepared_dataset(DS)
    _train(tmp_path / "r", "training.interactive_val_every=1", "training.interactive_val_cases=1",
           f"training.interactive_val_raw={DS}", "training.interactive_val_case_names=[synthetic_0001]",
           "training.optimizer=adamw", "training.initial_lr=0.002", "training.channels_last=true",
           "training.cpu_bf16=true", "training.deep_supervision=false", "interaction.slice_power=0.5")
    lines = _metrics(tmp_path / "r")
    assert all(np.isfinite(l["train_loss"]) for l in lines)
    log = "".join(p.read_text() for p in (tmp_path / "r").glob("training_log_*.txt"))
    assert ("no native bfloat16" in log) != cpu_has_bf16()
    assert len(lines) == 2
    for l in lines:
        assert 0.0 <= l["val_dice_1"] <= 1.0 and 0.0 <= l["val_dice_3"] <= 1.0
        assert all(0.0 <= l[f"val_dice_1_{k}"] <= 1.0 for k in ("point", "bbox", "lasso", "scribble"))
        assert l["val_objects"] >= 1 and l["val_failures"] == 0
    assert 0 < lines[0]["train_minutes"] < lines[1]["train_minutes"]
    ckpt = torch.load(tmp_path / "r" / "checkpoint_final.pth", weights_only=False, map_location="cpu")
    assert "exp_avg" in str(ckpt["optimizer_state"]["state"][0].keys())  # AdamW's state
    assert ckpt["train_seconds"] > 0
    debug = json.loads((tmp_path / "r" / "debug.json").read_text())  # nnU-Net's dump of the trainer's attributes
    assert debug["enable_deep_supervision"] == "False" and "DeepSupervisionWrapper" not in debug["loss"]
    resolved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert resolved["training"]["deep_supervision"] is False and resolved["interaction"]["slice_power"] == 0.5
    # ... and in nnU-Net's logger: one value per epoch in its checkpoint, the fourth panel of progress.png
    from PIL import Image

    logged = ckpt["logging"]
    assert logged["val_dice_1"] == [l["val_dice_1"] for l in lines]
    assert logged["val_dice_1_lasso"] == [l["val_dice_1_lasso"] for l in lines]
    assert Image.open(tmp_path / "r" / "progress.png").size == (1200, 2000)
