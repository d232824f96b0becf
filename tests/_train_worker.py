"""Runs one training rank (under torchrun, or with SLURM_* variables) and saves its final weights.

usage: python tests/_train_worker.py [--resume] DATASET_ID CONFIG RUN_DIR OUT_DIR [overrides…]

Exit status 0 also when stopped by a signal after writing checkpoint_latest.pth (then no weights are saved); a
training error prints ``error: …`` and exits with 1, as nnInteractive_train does.
"""

import os
import sys
from pathlib import Path

import torch

from nninteractive_train.config import load_config
from nninteractive_train.distributed import resolve_env
from nninteractive_train.errors import exit_at_once
from nninteractive_train.training.launch import train
from nninteractive_train.training.loop import TrainingError, TrainingInterrupted

if __name__ == "__main__":
    args = sys.argv[1:]
    resume = args[0] == "--resume"
    dataset_id, config, run_dir, out_dir, *overrides = args[1:] if resume else args
    env = resolve_env()
    try:
        trainer = train(int(dataset_id), None if resume else load_config(config, overrides), run_dir,
                        resume=resume, use_cuda=False)
    except TrainingInterrupted:
        sys.exit(0)
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        if e.exit_at_once:  # a lost rank: no interpreter teardown, as the CLI does
            exit_at_once(1)
        sys.exit(1)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    torch.save({"weights": trainer.module.state_dict(), "env": env, "batch_size": trainer.batch_size,
                "pid": os.getpid()}, Path(out_dir) / f"rank{env.rank}.pt")
