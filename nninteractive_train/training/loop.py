"""The epoch loop: nnU-Net's hooks in nnU-Net's order, plus follow-up batches, per-epoch metrics,
and checkpoint-and-exit on SIGTERM / SIGUSR1 / SIGUSR2 (SLURM's pre-timeout signal)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


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

    def agreed(self, distributed: bool) -> bool:
        if not distributed:
            return self.signum != 0
        t = torch.tensor([self.signum], dtype=torch.int64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        self.signum = int(t.item())
        return self.signum != 0


class TrainingInterrupted(Exception):
    """Training stopped on a signal after writing ``checkpoint_latest.pth``."""


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON line (one write call, flushed) so a crash never leaves a partial earlier line."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The records of ``run_dir/metrics.jsonl`` in order ([] without the file); a line that does not parse (a
    crash mid-write on another filesystem) is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def run_loop(trainer) -> None:
    from nninteractive_train.training.interaction import InteractionRound

    trainer.on_train_start()
    env = trainer.dist_env
    if trainer.interaction is None:
        trainer.interaction = InteractionRound(trainer.run_config, env.rank, trainer.num_epochs)
    if trainer._resume_states:
        trainer.interaction.load_state_dict(trainer._resume_states[env.rank])
    trainer.restore_loader_state()
    metrics_path = Path(trainer.output_folder) / "metrics.jsonl"
    stop = StopFlag()
    stop.install()
    try:
        for epoch in range(trainer.current_epoch, trainer.num_epochs):
            t_epoch = time.perf_counter()
            trainer.on_epoch_start()
            trainer.on_train_epoch_start()
            trainer.interaction.reset_epoch()
            outputs, iter_ms = [], []
            for _ in range(trainer.num_iterations_per_epoch):
                t0 = time.perf_counter()
                batch = trainer.interaction.next_batch(trainer.dataloader_train)
                outputs.append(trainer.train_step(batch))
                iter_ms.append((time.perf_counter() - t0) * 1e3)
                if stop.agreed(trainer.is_ddp):
                    trainer.save_checkpoint(str(Path(trainer.output_folder) / "checkpoint_latest.pth"),
                                            next_epoch=epoch)
                    trainer.print_to_log_file(f"signal {stop.signum}: saved checkpoint_latest.pth at epoch {epoch}, "
                                              f"stopping; resume with --resume")
                    raise TrainingInterrupted(stop.signum)
            trainer.on_train_epoch_end(outputs)
            with torch.no_grad():
                trainer.on_validation_epoch_start()
                val = [trainer.validation_step(next(trainer.dataloader_val))
                       for _ in range(trainer.num_val_iterations_per_epoch)]
                trainer.on_validation_epoch_end(val)
            record = {
                "epoch": epoch,
                "train_loss": float(trainer.logger.get_value("train_losses", step=-1)),
                "val_loss": float(trainer.logger.get_value("val_losses", step=-1)),
                "pseudo_dice": float(trainer.logger.get_value("mean_fg_dice", step=-1)),
                "p_followup": trainer.interaction.probability(epoch),
                **trainer.interaction.epoch_stats(),
                "iteration_ms": float(np.median(iter_ms)) if iter_ms else None,
                # time spent waiting for batches / all iteration time: > a few % means the GPU starves
                "data_wait_share": sum(trainer.interaction.waits_ms) / max(sum(iter_ms), 1e-9),
                "lr": float(trainer.optimizer.param_groups[0]["lr"]),
            }
            extra = getattr(trainer, "epoch_metrics_hook", None)
            if extra is not None:
                record.update(extra(epoch))
            # training time so far, without the interactive validation: the x axis of the learning curve
            trainer.train_seconds += time.perf_counter() - t_epoch - record.get("val_seconds", 0.0)
            record["train_minutes"] = trainer.train_seconds / 60
            trainer.on_epoch_end()
            if env.rank == 0:
                append_jsonl(metrics_path, record)
        trainer.on_train_end()
    finally:
        stop.uninstall()
        trainer.interaction.close()
        for dl in (trainer.dataloader_train, trainer.dataloader_val):
            finish = getattr(dl, "_finish", None)
            if finish is not None:
                finish()
