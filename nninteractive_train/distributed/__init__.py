"""Rank discovery (torchrun / SLURM), batch splitting and process-group set-up."""

from nninteractive_train.distributed.env import DistEnv, first_host, init_distributed, resolve_env, split_batch

__all__ = ["DistEnv", "first_host", "init_distributed", "resolve_env", "split_batch"]
