"""Rank discovery (torchrun / SLURM), SLURM host lists, batch splitting, process-group set-up, and the checks a
job submission runs before it queues (``distributed.preflight``)."""

from nninteractive_train.distributed.env import DistEnv, first_host, init_distributed, resolve_env, split_batch
from nninteractive_train.distributed.hostlist import HostlistError, expand_hostlist, hostnames

__all__ = ["DistEnv", "HostlistError", "expand_hostlist", "first_host", "hostnames", "init_distributed",
           "resolve_env", "split_batch"]
