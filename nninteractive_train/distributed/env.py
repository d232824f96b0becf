"""Ranks from torchrun or SLURM, the global-batch split, and process-group set-up.

torchrun exports RANK / LOCAL_RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT. Under ``srun`` without torchrun,
SLURM exports SLURM_PROCID / SLURM_LOCALID / SLURM_NTASKS / SLURM_JOB_NODELIST; the first host of the node list
is the rendezvous host. The CUDA device is ``cuda:LOCAL_RANK`` (stock nnU-Net uses the global rank, which is
wrong on every node but the first).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from nninteractive_train.distributed.hostlist import hostnames

DEFAULT_PORT = 29500


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    master_addr: str = "127.0.0.1"
    master_port: int = DEFAULT_PORT
    source: str = "single"
    """"torchrun", "slurm" or "single"."""

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def first_host(nodelist: str) -> str:
    """First host of a SLURM node list (``"rack[1-2]-node[01-04]"`` → ``"rack1-node01"``): from
    ``scontrol show hostnames`` where it runs, else from our parser (``hostlist.expand_hostlist``).

    Raises:
        HostlistError (a ValueError): the list is empty or malformed.
    """
    return hostnames(nodelist)[0]


def slurm_port(job_id: str | None) -> int:
    """A rendezvous port derived from the job id, so concurrent jobs on one node do not collide."""
    if not job_id or not str(job_id).isdigit():
        return DEFAULT_PORT
    return 20000 + int(job_id) % 20000


def _int(environ: Mapping[str, str], key: str) -> int:
    try:
        return int(environ[key])
    except ValueError:
        raise ValueError(f"environment variable {key}={environ[key]!r} is not an integer") from None


def resolve_env(environ: Mapping[str, str] | None = None) -> DistEnv:
    """Read the process's place in the job from torchrun's variables, else SLURM's, else single-process."""
    env = os.environ if environ is None else environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return DistEnv(
            rank=_int(env, "RANK"),
            local_rank=_int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else 0,
            world_size=_int(env, "WORLD_SIZE"),
            master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
            master_port=_int(env, "MASTER_PORT") if "MASTER_PORT" in env else DEFAULT_PORT,
            source="torchrun",
        )
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env and _int(env, "SLURM_NTASKS") > 1:
        addr = env.get("MASTER_ADDR") or first_host(env.get("SLURM_JOB_NODELIST", env.get("SLURM_NODELIST", "")))
        port = _int(env, "MASTER_PORT") if "MASTER_PORT" in env else slurm_port(env.get("SLURM_JOB_ID"))
        return DistEnv(
            rank=_int(env, "SLURM_PROCID"),
            local_rank=_int(env, "SLURM_LOCALID") if "SLURM_LOCALID" in env else 0,
            world_size=_int(env, "SLURM_NTASKS"),
            master_addr=addr,
            master_port=port,
            source="slurm",
        )
    return DistEnv()


def split_batch(global_batch: int, world_size: int) -> list[int]:
    """Per-rank batch sizes of a global batch.

    The global batch must divide evenly: uneven ranks would weight samples differently in DDP's gradient mean.

    Raises:
        ValueError: not divisible, or fewer samples than ranks.
    """
    if world_size < 1:
        raise ValueError(f"world size must be >= 1, got {world_size}")
    if global_batch < world_size or global_batch % world_size:
        raise ValueError(
            f"global batch {global_batch} cannot be split evenly over {world_size} processes; "
            f"use a multiple of {world_size} (model.global_batch_size)"
        )
    return [global_batch // world_size] * world_size


def init_distributed(env: DistEnv, use_cuda: bool, timeout_s: float | None = None):
    """Initialise the default process group (NCCL on GPU, gloo on CPU) and return the device. ``timeout_s``:
    how long a collective waits for the other ranks before it fails (torch's default: 10 min NCCL, 30 min gloo)."""
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    if use_cuda:
        device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if env.is_distributed and not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", env.master_addr)
        os.environ.setdefault("MASTER_PORT", str(env.master_port))
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            rank=env.rank,
            world_size=env.world_size,
            init_method=f"tcp://{env.master_addr}:{env.master_port}" if env.source == "slurm" else "env://",
            **({"timeout": timedelta(seconds=timeout_s)} if timeout_s else {}),
        )
    return device
