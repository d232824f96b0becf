"""The epoch loop: nnU-Net's ``run_training`` with follow-up batches, and checkpoint-and-exit on SIGTERM /
SIGUSR1 / SIGUSR2 (SLURM's pre-timeout signal) at any iteration. Everything else is a trainer hook
(``trainer.py``); the records of metrics.jsonl and iterations.jsonl are built by the small functions below."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from nninteractive_train.errors import UserError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


def run_loop(trainer) -> None:
    """Train from ``trainer``'s epoch and iteration (a resumed run's) to ``num_epochs``."""
    stop = StopFlag()
    try:
        trainer.on_train_start()  # data, the interaction round and its shared memory, a resumed state
        stop.install()
        for epoch in range(trainer.current_epoch, trainer.num_epochs):
            trainer.on_epoch_start()
            trainer.on_train_epoch_start()
            for it in range(trainer.start_iteration, trainer.num_iterations_per_epoch):
                batch = trainer.interaction.next_batch(trainer.dataloader_train)  # a follow-up, else fresh
                step = trainer.train_step(batch)
                trainer.interaction.after_step(batch, step["logits"], epoch)  # maybe on to user simulation
                trainer.on_iteration_end(batch, step, it)
                if stop.agreed(trainer.is_ddp, trainer.object_group):
                    save_and_stop(trainer, epoch, it + 1, stop.signum)
            trainer.on_train_epoch_end()
            with torch.no_grad():
                trainer.on_validation_epoch_start()
                trainer.on_validation_epoch_end([trainer.validation_step(next(trainer.dataloader_val))
                                                 for _ in range(trainer.num_val_iterations_per_epoch)])
            trainer.on_epoch_end()  # metrics.jsonl, periodic and best checkpoints
        trainer.on_train_end()  # checkpoint_final.pth
    finally:
        stop.uninstall()
        trainer.shutdown()


class TrainingInterrupted(Exception):
    """Training stopped on a signal after writing ``checkpoint_latest.pth``."""


class TrainingError(UserError):
    """Training cannot go on: a lost rank, or a checkpoint that could not be written (the message says which
    and what is kept; the hint, how to continue)."""


class LostRankError(TrainingError):
    """Another rank died or stopped answering. The process should end right after saying so
    (``exit_at_once``): a gloo/NCCL group with a dead or hung peer cannot be torn down reliably, and the
    interpreter's normal exit then sometimes aborts in a C++ destructor ("terminate called without an active
    exception", status -6 instead of the error's), which hides the error from a scheduler or a requeue script.
    The trainer's own teardown (pools, shared memory) has run before this is raised."""

    exit_at_once = True


def save_and_stop(trainer, epoch: int, iteration: int, signum: int) -> None:
    """Write checkpoint_latest.pth at (``epoch``, ``iteration``: the next one to run) and stop."""
    latest = Path(trainer.output_folder) / "checkpoint_latest.pth"
    if not trainer.save_checkpoint(str(latest), epoch=epoch, iteration=iteration):
        raise TrainingError(f"signal {signum}: writing the checkpoint failed (see the log); the previous one is kept",
                            latest, hint="--resume continues from it")
    trainer.print_to_log_file(f"signal {signum}: saved {latest.name} at epoch {epoch}, iteration {iteration}; "
                              f"stopping, resume with --resume")
    raise TrainingInterrupted(signum)


class StopFlag:
    """Set by a signal handler; all ranks agree on it at the same iteration (a tiny all-reduce)."""

    def __init__(self):
        self.signum = 0
        self._previous = {}

    def install(self) -> None:
        for s in STOP_SIGNALS:
            self._previous[s] = signal.signal(s, self._handle)

    def uninstall(self) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        self.signum = signum

    def agreed(self, distributed: bool, group=None) -> bool:
        """True on every rank once any rank got a signal. ``group``: a gloo group (the flag is a CPU tensor)."""
        if not distributed:
            return self.signum != 0
        t = torch.tensor([self.signum], dtype=torch.int64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group)
        agreed = int(t.item())
        # A signal whose handler ran during the all-reduce is not in ``t``: it stays pending for the next call
        # (overwriting it with the reduced 0 lost it, and the run went on to its end), while every rank returns
        # the same answer now.
        self.signum = max(self.signum, agreed)
        return agreed != 0


def epoch_record(trainer, epoch: int) -> dict:
    """The metrics.jsonl line of ``epoch`` (before interactive validation and training time are added)."""
    rnd, iter_ms = trainer.interaction, trainer._iter_ms
    return {
        "epoch": epoch,
        "train_loss": float(trainer.logger.get_value("train_losses", step=-1)),
        "val_loss": float(trainer.logger.get_value("val_losses", step=-1)),
        "pseudo_dice": float(trainer.logger.get_value("mean_fg_dice", step=-1)),
        "p_followup": rnd.probability(epoch),
        **rnd.epoch_stats(),
        "iteration_ms": float(np.median(iter_ms)) if iter_ms else None,
        # time spent waiting for batches / all iteration time: > a few % means the GPU starves
        "data_wait_share": sum(rnd.waits_ms) / max(sum(iter_ms), 1e-9),
        "lr": float(trainer.optimizer.param_groups[0]["lr"]),
    }


def iteration_record(epoch: int, iteration: int, loss: float, batch: dict) -> dict:
    """The iterations.jsonl line of one step: its loss, and where its batch came from (a follow-up from the
    pool, or a fresh batch from data worker ``worker`` whose sampler stood at ``sampler_position`` after it)."""
    stream = batch.get("stream")
    sampler = (stream or {}).get("sampler") or {}
    return {"epoch": epoch, "iteration": iteration, "loss": loss, "followup": stream is None,
            "worker": stream["worker"] if stream else None, "sampler_position": sampler.get("position"),
            "cases": [m.get("case") for m in batch["meta"]]}


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON line (one write call, flushed) so a crash never leaves a partial earlier line."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def read_jsonl(path: str | Path) -> list[dict]:
    """The records of a JSON-lines file in order ([] without the file); a line that does not parse (a crash
    mid-write on another filesystem) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The records of ``run_dir/metrics.jsonl`` in order ([] without the file)."""
    return read_jsonl(Path(run_dir) / "metrics.jsonl")
