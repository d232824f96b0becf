"""The training state: everything a resume needs, in one object (torchtitan's ``TrainState``, lingua's train
state), gathered from all ranks, written as one checkpoint file and restored in one place.

Shared by all ranks: epoch and iteration (where the run stands), network, optimiser, grad scaler, the weights'
moving average (``training.ema_decay``), nnU-Net's logger, training time, and the resolved config with its hash.
The learning rate needs no state of its own: it is a function of the epoch (``optim.learning_rate``). Per rank
(``RankState``): the process's torch / numpy / Python generators, the interaction round (follow-up draws, pool
batch counter, waiting follow-up batches, epoch counters), every data worker's streams (augmentation generator and
sampler position, as of the last batch the trainer consumed) and the losses of the epoch in progress.

A checkpoint is this state as a plain dict with nnU-Net's key names (``network_weights``, ``current_epoch``, …),
which the export and nnU-Net's tools read, plus ``format`` / ``format_version``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nninteractive_train.training.checkpoint import CheckpointError

FORMAT = "nninteractive_train.train_state"
VERSION = 2
_REQUIRED = ("network_weights", "optimizer_state", "current_epoch", "run_config")


def rng_state() -> dict:
    """The process's global generators: torch (CPU and, when initialised, CUDA), numpy's legacy global
    generator (batchgenerators' augmentations draw from it) and Python's ``random``."""
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
            "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` returned (CUDA only when both sides have it)."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_initialized():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


@dataclass(repr=False)
class RankState:
    """One rank's streams: what lives in that rank's process."""

    rank: int
    rng: dict
    """``rng_state()`` of the rank's process."""
    interaction: dict | None
    """``InteractionRound.state_dict()``."""
    loaders: dict = field(default_factory=dict)
    """``{"train": {worker: stream}, "val": {...}}`` (``data.TrackedLoader.state_dict``)."""
    epoch_losses: list[float] = field(default_factory=list)
    """Training losses of the epoch in progress, one per iteration done."""

    def __repr__(self) -> str:  # nnU-Net's debug.json stringifies trainer attributes: keep it short
        return f"RankState(rank={self.rank}, workers={sorted(self.loaders.get('train', {}))})"


@dataclass(repr=False)
class TrainState:
    """Everything a resume needs (see the module docstring). ``epoch`` is the epoch in progress and
    ``iteration`` the next iteration of it to run (0: the epoch has not started)."""

    epoch: int
    iteration: int
    network: dict
    optimizer: dict
    grad_scaler: dict | None
    logging: dict
    best_ema: float | None
    train_seconds: float
    config: dict
    ranks: list[RankState]
    ema: dict | None = None
    """``WeightEMA.state_dict()`` (decay, updates, averaged weights) when ``training.ema_decay`` is set."""
    extra: dict = field(default_factory=dict)
    """nnU-Net's informational keys (``init_args``, ``trainer_name``, ``inference_allowed_mirroring_axes``)."""

    def __repr__(self) -> str:
        return f"TrainState(epoch={self.epoch}, iteration={self.iteration}, ranks={len(self.ranks)})"

    @property
    def config_hash(self) -> str:
        from nninteractive_train.config import config_hash

        return config_hash(self.config)

    def rank_state(self, rank: int, world_size: int) -> RankState | None:
        """This rank's streams; None when the state was written by another number of ranks (the streams of a
        different split cannot continue; network, optimiser and position still do)."""
        if len(self.ranks) != world_size:
            return None
        return self.ranks[rank]

    def to_checkpoint(self) -> dict:
        return {
            "format": FORMAT, "format_version": VERSION,
            "network_weights": self.network, "optimizer_state": self.optimizer,
            "grad_scaler_state": self.grad_scaler, "logging": self.logging, "_best_ema": self.best_ema,
            "current_epoch": self.epoch, "iteration": self.iteration, "train_seconds": self.train_seconds,
            "run_config": self.config, "config_hash": self.config_hash,
            "rank_states": [vars(r) for r in self.ranks], "ema": self.ema, **self.extra,
        }

    @classmethod
    def from_checkpoint(cls, ck: Any, path: str | Path = "checkpoint") -> "TrainState":
        """Validate a loaded checkpoint dict and return its state.

        Raises:
            CheckpointError: not a dict with this package's keys (a foreign file), or a newer format.
        """
        if not isinstance(ck, dict):
            raise CheckpointError(f"not a training checkpoint of nninteractive_train (it holds a "
                                  f"{type(ck).__name__}, not a dict)", path)
        missing = [k for k in _REQUIRED if k not in ck]
        if missing:
            raise CheckpointError(f"not a training checkpoint of nninteractive_train (missing {', '.join(missing)})",
                                  path, hint="a model folder's or another program's checkpoint?")
        version = ck.get("format_version", 1)  # 1: before this format had a name (epoch-level resume only)
        if ck.get("format", FORMAT) != FORMAT or version > VERSION:
            raise CheckpointError(f"the checkpoint has format {ck.get('format')!r} version {version}; this code "
                                  f"reads {FORMAT!r} up to version {VERSION}", path)
        ranks = [RankState(rank=r.get("rank", i), rng=r.get("rng") if version >= 2 else None,
                           interaction=r.get("interaction") if version >= 2 else r,
                           loaders=r.get("loaders", {}) if version >= 2 else {},
                           epoch_losses=list(r.get("epoch_losses", [])) if version >= 2 else [])
                 for i, r in enumerate(ck.get("rank_states") or []) if r is not None]
        extra_keys = ("init_args", "trainer_name", "inference_allowed_mirroring_axes")
        return cls(epoch=int(ck["current_epoch"]), iteration=int(ck.get("iteration", 0)),
                   network=ck["network_weights"], optimizer=ck["optimizer_state"],
                   grad_scaler=ck.get("grad_scaler_state"), logging=ck.get("logging"), best_ema=ck.get("_best_ema"),
                   train_seconds=float(ck.get("train_seconds", 0.0)), config=ck["run_config"], ranks=ranks,
                   ema=ck.get("ema"),
                   extra={k: ck[k] for k in extra_keys if k in ck})


def gather_rank_states(local: RankState, group=None) -> list[RankState] | None:
    """Every rank's ``RankState`` on rank 0 (None on the others); ``[local]`` without a process group.

    ``group`` should be a gloo group: the states are CPU objects, and NCCL would stage them on the GPU."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return [local]
    rank = dist.get_rank()
    out = [None] * dist.get_world_size() if rank == 0 else None
    dist.gather_object(local, out, dst=0, group=group)
    return out


def capture(trainer, epoch: int, iteration: int = 0, followups: bool = True) -> TrainState | None:
    """The run's state at ``iteration`` of ``epoch``, every rank's streams gathered on rank 0 (a collective: all
    ranks call it); None on the other ranks. ``followups``: include the follow-up batches waiting in the pools.
    Draws no random numbers."""
    import time

    from nninteractive_train.config import to_dict
    from nninteractive_train.training.checkpoint import clean_state_dict

    mine = RankState(
        rank=trainer.dist_env.rank, rng=rng_state(),
        interaction=trainer.interaction.state_dict(followups) if trainer.interaction else None,
        loaders={k: dl.state_dict() for k, dl in (("train", trainer.dataloader_train), ("val", trainer.dataloader_val))
                 if hasattr(dl, "state_dict")},
        epoch_losses=list(trainer.epoch_losses) if iteration else [])
    ranks = gather_rank_states(mine, trainer.object_group)
    if ranks is None:
        return None
    seconds = trainer.train_seconds + (time.perf_counter() - trainer._t_epoch if iteration else 0.0)
    return TrainState(
        epoch=epoch, iteration=iteration, network=clean_state_dict(trainer.module.state_dict()),
        optimizer=trainer.optimizer.state_dict(),
        grad_scaler=trainer.grad_scaler.state_dict() if trainer.grad_scaler is not None else None,
        logging=trainer.logger.get_checkpoint(), best_ema=trainer._best_ema, train_seconds=seconds,
        config=to_dict(trainer.run_config), ranks=ranks,
        ema=trainer.ema.state_dict() if trainer.ema is not None else None,
        extra={"init_args": trainer.my_init_kwargs, "trainer_name": trainer.__class__.__name__,
               "inference_allowed_mirroring_axes": trainer.inference_allowed_mirroring_axes})


def restore(trainer, state: TrainState) -> None:
    """Put the run where ``state`` left it: the one place a resume restores anything. Called at the end of
    ``on_train_start``, after everything that draws random numbers at start-up; the data loaders were built
    from ``state`` already (their workers start with the streams they had)."""
    from nninteractive_train.training.checkpoint import clean_state_dict

    trainer.module.load_state_dict(clean_state_dict(state.network))
    trainer.optimizer.load_state_dict(state.optimizer)
    if trainer.ema is not None and state.ema is not None:
        trainer.ema.load_state_dict(state.ema)
    if trainer.grad_scaler is not None and state.grad_scaler is not None:
        trainer.grad_scaler.load_state_dict(state.grad_scaler)
    trainer.logger.load_checkpoint(state.logging)
    trainer._best_ema = state.best_ema
    trainer.current_epoch, trainer.start_iteration = state.epoch, state.iteration
    trainer.train_seconds = state.train_seconds
    env = trainer.dist_env
    mine = state.rank_state(env.rank, env.world_size)
    if mine is None:
        trainer.print_to_log_file(f"the checkpoint was written by {len(state.ranks)} rank(s), this run has "
                                  f"{env.world_size}: network, optimiser and position continue, the per-rank "
                                  f"random streams start afresh")
        return
    trainer.interaction.load_state_dict(mine.interaction)
    trainer.epoch_losses = list(mine.epoch_losses)
    if mine.rng is not None:
        set_rng_state(mine.rng)
