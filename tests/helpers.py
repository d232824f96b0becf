"""Shared helpers for the end-to-end tests: a small generated dataset, planned and preprocessed once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEBUG_CFG = REPO / "configs" / "debug_cpu.yaml"
PY = sys.executable


def prepared_dataset(dataset_id: int, num_cases: int = 4, seed: int = 0) -> int:
    """Generate, plan and preprocess dataset ``dataset_id`` once per test session (idempotent)."""
    from nninteractive_train.cli import make_synthetic, plan_and_preprocess

    pre = Path(os.environ["nnUNet_preprocessed"])
    if not list(pre.glob(f"Dataset{dataset_id:03d}_*/nnInteractivePlans.json")):
        make_synthetic.main(["-d", str(dataset_id), "--num-cases", str(num_cases), "--seed", str(seed)])
        plan_and_preprocess.main(["-d", str(dataset_id), "--config", str(DEBUG_CFG), "-np", "1"])
    return dataset_id


def prepared_collection(dataset_id: int = 988) -> int:
    """The demo collection (dataset_lists/demo.yaml, its generated sources 991 and 992 written as 966 and 967: the
    demo pipeline's test writes its own 991 into the same session folders) built, preprocessed with centre
    candidates and given SuperVoxels, once per test session (idempotent)."""
    from nninteractive_train.cli import build_collection, generate_supervoxels, make_synthetic, plan_and_preprocess

    pre = Path(os.environ["nnUNet_preprocessed"])
    if not list(pre.glob(f"Dataset{dataset_id:03d}_*/*/supervoxels/index.json")):
        make_synthetic.main(["-d", "966", "--num-cases", "3", "--seed", "1", "--name", "SynthA"])
        make_synthetic.main(["-d", "967", "--num-cases", "2", "--seed", "2", "--name", "SynthB"])
        import tempfile

        lst = Path(tempfile.mkdtemp()) / "demo_collection.yaml"
        lst.write_text((REPO / "dataset_lists" / "demo.yaml").read_text().replace("source: 991", "source: 966")
                       .replace("source: 992", "source: 967"))
        d = str(dataset_id)
        assert build_collection.main([str(lst), "-d", d, "--quiet"]) == 0
        plan_and_preprocess.main(["-d", d, "--config", str(DEBUG_CFG), "-np", "1"])
        assert generate_supervoxels.main(["-d", d, "--quiet"]) == 0
    return dataset_id


def read_lines(path: Path) -> list[dict]:
    """The records of a JSON-lines file ([] while it does not exist)."""
    import json

    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def slurm_ranks(args: list[str], n: int = 2) -> list[subprocess.Popen]:
    """Start ``n`` processes of ``python ARGS`` with only SLURM_* variables (as `srun --ntasks n` sets them);
    their output is captured (stdout and stderr together)."""
    port = str(free_port())
    procs = []
    for rank in range(n):
        env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
        env.update(SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank), SLURM_NTASKS=str(n), SLURM_JOB_ID="77",
                   SLURM_JOB_NODELIST="localhost", MASTER_PORT=port)
        procs.append(subprocess.Popen([PY, *args], env=env, cwd=REPO, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    return procs


def wait_for_lines(path: Path, n: int, procs: list[subprocess.Popen], timeout: float = 300) -> None:
    """Wait until ``path`` has ``n`` JSON lines while every process still runs (an assertion error otherwise)."""
    import time

    deadline = time.time() + timeout
    while len(read_lines(path)) < n and all(p.poll() is None for p in procs) and time.time() < deadline:
        time.sleep(0.05)
    for p in procs:
        assert p.poll() is None, p.communicate()[0][-3000:]
    assert len(read_lines(path)) >= n, f"{path} did not reach {n} lines in {timeout} s"


def run(cmd: list[str], timeout: float = 600, env: dict | None = None, check: bool = True):
    """Run a command with the test session's environment; returns the CompletedProcess."""
    full_env = dict(os.environ, **(env or {}))
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO)
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}")
    return res


