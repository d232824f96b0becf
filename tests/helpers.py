"""Shared helpers for the end-to-end tests: a small generated dataset, planned and preprocessed once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEBUG_CFG = REPO / "configs" / "debug_cpu.yaml"


def prepared_dataset(dataset_id: int, num_cases: int = 4, seed: int = 0) -> int:
    """Generate, plan and preprocess dataset ``dataset_id`` once per test session (idempotent)."""
    from nninteractive_train.cli import make_synthetic, plan_and_preprocess

    pre = Path(os.environ["nnUNet_preprocessed"])
    if not list(pre.glob(f"Dataset{dataset_id:03d}_*/nnInteractivePlans.json")):
        make_synthetic.main(["-d", str(dataset_id), "--num-cases", str(num_cases), "--seed", str(seed)])
        plan_and_preprocess.main(["-d", str(dataset_id), "--config", str(DEBUG_CFG), "-np", "1"])
    return dataset_id


def run(cmd: list[str], timeout: float = 600, env: dict | None = None, check: bool = True):
    """Run a command with the test session's environment; returns the CompletedProcess."""
    full_env = dict(os.environ, **(env or {}))
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO)
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}")
    return res


PY = sys.executable
