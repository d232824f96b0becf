"""Runs one training rank (under torchrun, or with SLURM_* variables) and saves its final weights.

usage: python tests/_train_worker.py DATASET_ID CONFIG RUN_DIR OUT_DIR [overrides…]
"""

import os
import sys
from pathlib import Path

import torch

from nninteractive_train.config import load_config
from nninteractive_train.distributed import resolve_env
from nninteractive_train.training.launch import train

if __name__ == "__main__":
    dataset_id, config, run_dir, out_dir, *overrides = sys.argv[1:]
    env = resolve_env()
    trainer = train(int(dataset_id), load_config(config, overrides), run_dir, use_cuda=False)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    torch.save({"weights": trainer.module.state_dict(), "env": env, "batch_size": trainer.batch_size,
                "pid": os.getpid()}, Path(out_dir) / f"rank{env.rank}.pt")
