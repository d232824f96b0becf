"""Interactive validation metrics in nnU-Net's logger: ``progress.png`` and Weights & Biases see them.

nnU-Net's ``LocalLogger`` keeps one list per metric with exactly one value per epoch, and infers the epoch to plot
from the shortest list. Interactive validation runs every few epochs, so its metrics (``val_dice_1``,
``val_dice_1_<kind>``, … from ``evaluation.interactive_validation``) get NaN on the other epochs in the local lists
and are sent to the other loggers (W&B when ``nnUNet_wandb_enabled=1``) only on the epochs they were measured.
"""

from __future__ import annotations

import math
import os

from nnunetv2.training.logging.nnunet_logger import LocalLogger

#: the record keys that go to the logger (prefix match)
LOGGED_PREFIX = "val_dice_"
#: nnU-Net's own per-epoch keys, which decide how many epochs the progress plot shows
NNUNET_KEYS = ("mean_fg_dice", "ema_fg_dice", "train_losses", "val_losses", "lrs",
               "epoch_start_timestamps", "epoch_end_timestamps")


class InteractiveLocalLogger(LocalLogger):
    """nnU-Net's local logger that accepts new per-epoch keys (earlier epochs padded with NaN) and draws them as a
    fourth panel of ``progress.png``."""

    def log(self, key, value, epoch: int):
        values = self.my_fantastic_logging.setdefault(key, [])
        values.extend([math.nan] * (epoch - len(values)))
        super().log(key, value, epoch)

    def extra_keys(self) -> list[str]:
        return sorted(k for k in self.my_fantastic_logging if k.startswith(LOGGED_PREFIX))

    def plot_progress_png(self, output_folder):
        import matplotlib.pyplot as plt

        extra = self.extra_keys()
        if not extra:
            return super().plot_progress_png(output_folder)
        log = self.my_fantastic_logging
        epoch = min(len(log[k]) for k in NNUNET_KEYS) - 1
        x = list(range(epoch + 1))
        with plt.style.context("default"):  # nnU-Net's seaborn font_scale 2.5 leaks into every later figure
            fig, (ax, ax_t, ax_lr, ax_i) = plt.subplots(4, 1, figsize=(12, 20))
            ax2 = ax.twinx()
            ax.plot(x, log["train_losses"][:epoch + 1], color="b", label="loss_tr")
            ax.plot(x, log["val_losses"][:epoch + 1], color="r", label="loss_val")
            ax2.plot(x, log["mean_fg_dice"][:epoch + 1], color="g", ls="dotted", label="pseudo dice")
            ax2.plot(x, log["ema_fg_dice"][:epoch + 1], color="g", label="pseudo dice (mov. avg.)")
            ax.set(xlabel="epoch", ylabel="loss")
            ax2.set_ylabel("pseudo dice")
            ax.legend(loc="upper left")
            ax2.legend(loc="upper right")
            durations = [e - s for e, s in zip(log["epoch_end_timestamps"], log["epoch_start_timestamps"])]
            ax_t.plot(x, durations[:epoch + 1], color="b", label="epoch duration")
            ax_t.set(xlabel="epoch", ylabel="time [s]", ylim=(0, None))
            ax_lr.plot(x, log["lrs"][:epoch + 1], color="b", label="learning rate")
            ax_lr.set(xlabel="epoch", ylabel="learning rate")
            for key in extra:
                pts = [(e, v) for e, v in enumerate(log[key][:epoch + 1]) if v is not None and math.isfinite(v)]
                if pts:
                    ax_i.plot(*zip(*pts), marker="o", ls="-" if key == "val_dice_1" else "--",
                              lw=2.5 if key == "val_dice_1" else 1.2, label=key.removeprefix(LOGGED_PREFIX))
            ax_i.set(xlabel="epoch", ylabel="held-out Dice (interactive validation)", ylim=(0, 1))
            ax_i.legend(loc="upper left", fontsize="small", ncol=3)
            fig.tight_layout()
            tmp = os.path.join(output_folder, ".progress.png.tmp.png")
            fig.savefig(tmp)
            plt.close(fig)
            os.replace(tmp, os.path.join(output_folder, "progress.png"))


def install(meta_logger) -> None:
    """Swap nnU-Net's ``MetaLogger.local_logger`` for an ``InteractiveLocalLogger`` holding the same values."""
    if isinstance(meta_logger.local_logger, InteractiveLocalLogger):
        return
    new = InteractiveLocalLogger(meta_logger.local_logger.verbose)
    new.load_checkpoint(meta_logger.local_logger.get_checkpoint())
    meta_logger.local_logger = new


def log_interactive(meta_logger, epoch: int, record: dict) -> None:
    """Log the ``val_dice_*`` values of ``record`` (one epoch's metrics.jsonl record) for ``epoch``: measured values
    go to every logger, keys seen before but not measured this epoch get NaN in the local lists only."""
    local = meta_logger.local_logger
    keys = set(local.extra_keys()) | {k for k in record if k.startswith(LOGGED_PREFIX)}
    for key in sorted(keys):
        value = record.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            meta_logger.log(key, float(value), epoch)
        else:
            local.log(key, math.nan, epoch)
