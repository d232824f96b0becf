"""Two torchrun launchers as two "nodes" on localhost (the README's multi-node command, c10d rendezvous on
127.0.0.1) train the tiny config to the end on gloo, sharing one run folder as nodes share a file system."""

from __future__ import annotations

import re
import socket
import subprocess
import time

import pytest

from helpers import DEBUG_CFG, PY, REPO, prepared_dataset
from nninteractive_train.training.loop import read_metrics

DS = 990
EPOCHS = 3
TIMEOUT = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_node_c10d_rendezvous_trains_to_the_end(tmp_path):
    prepared_dataset(DS)
    run_dir, port = tmp_path / "run", free_port()

    def launcher(node: int) -> subprocess.Popen:
        cmd = [PY, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "nnit-two-nodes",
               "--rdzv-conf", f"is_host={int(node == 0)}", "--max-restarts", "0",
               "-m", "nninteractive_train.cli.train", "-d", str(DS), "--config", str(DEBUG_CFG),
               "--output", str(run_dir), "--cpu", f"training.num_epochs={EPOCHS}", "training.iterations_per_epoch=2"]
        log = open(tmp_path / f"node{node}.log", "w")
        return subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

    t0 = time.monotonic()
    nodes = [launcher(0), launcher(1)]
    try:
        codes = [p.wait(TIMEOUT) for p in nodes]
    finally:
        for p in nodes:
            if p.poll() is None:
                p.kill()
                p.wait()
    logs = [(tmp_path / f"node{n}.log").read_text(errors="replace") for n in (0, 1)]
    assert codes == [0, 0], "\n".join(log[-3000:] for log in logs)
    # each launcher ran one process of a world of 2 (nnU-Net's line names the global rank)
    ranks = [re.findall(r"I am local rank (\d+)\. 0 GPUs are available\. The world size is 2\.", log) for log in logs]
    assert sorted(r for found in ranks for r in found) == ["0", "1"] and all(len(f) == 1 for f in ranks), ranks
    assert [m["epoch"] for m in read_metrics(run_dir)] == list(range(EPOCHS))
    assert (run_dir / "checkpoint_final.pth").is_file()
    print(f"two torchrun nodes: {time.monotonic() - t0:.1f} s")
