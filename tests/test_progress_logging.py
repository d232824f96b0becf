"""Interactive validation metrics through nnU-Net's MetaLogger: local lists, other loggers, progress.png."""

import math

import numpy as np
import pytest
from nnunetv2.training.logging.nnunet_logger import MetaLogger

from nninteractive_train.training import progress


class RecordingLogger:
    """Stands where nnU-Net puts its WandbLogger in ``MetaLogger.loggers`` (wandb is not installed here)."""

    def __init__(self):
        self.calls = []

    def log(self, key, value, step):
        self.calls.append((key, value, step))

    def update_config(self, config):
        pass

    def log_summary(self, key, value):
        pass


def _meta(tmp_path):
    meta = MetaLogger(str(tmp_path), resume=False)
    progress.install(meta)
    rec = RecordingLogger()
    meta.loggers.append(rec)
    return meta, rec


def _nnunet_epoch(meta, epoch):
    """What nnU-Net's trainer logs every epoch."""
    for key, value in [("lrs", 1e-3), ("train_losses", -0.1 * epoch), ("mean_fg_dice", 0.1 * epoch),
                       ("dice_per_class_or_region", [0.1 * epoch]), ("val_losses", -0.1 * epoch),
                       ("epoch_start_timestamps", float(epoch)), ("epoch_end_timestamps", epoch + 0.5)]:
        meta.log(key, value, epoch)


@pytest.mark.parametrize("every", [1, 3, 7])
def test_interactive_metrics_reach_every_logger_only_when_measured(tmp_path, every):
    meta, rec = _meta(tmp_path)
    measured = []
    for epoch in range(7):
        _nnunet_epoch(meta, epoch)
        record = {"epoch": epoch, "train_loss": 0.0}
        if (epoch + 1) % every == 0:
            record.update(val_dice_1=0.1 * epoch, val_dice_1_point=0.2, val_dice_1_lasso=float("nan"))
            measured.append(epoch)
        progress.log_interactive(meta, epoch, record)
        for key in meta.local_logger.extra_keys():  # one value per epoch, as nnU-Net's logger requires
            assert len(meta.get_value(key, step=None)) == epoch + 1
    forwarded = [(k, s) for k, _, s in rec.calls if k.startswith("val_dice_")]
    assert forwarded == [(k, e) for e in measured for k in ("val_dice_1", "val_dice_1_point")]
    values = meta.get_value("val_dice_1", step=None)
    assert [e for e, v in enumerate(values) if math.isfinite(v)] == measured
    assert all(math.isnan(v) for v in meta.get_value("val_dice_1_lasso", step=None))


def test_a_key_first_seen_late_is_padded(tmp_path):
    meta, _ = _meta(tmp_path)
    meta.log("val_dice_1", 0.5, 4)
    values = meta.get_value("val_dice_1", step=None)
    assert len(values) == 5 and values[-1] == 0.5 and all(math.isnan(v) for v in values[:4])


def test_checkpoint_round_trip_keeps_interactive_lists(tmp_path):
    meta, _ = _meta(tmp_path)
    for epoch in range(3):
        _nnunet_epoch(meta, epoch)
        progress.log_interactive(meta, epoch, {"val_dice_1": 0.3} if epoch == 1 else {})
    resumed = MetaLogger(str(tmp_path), resume=True)
    progress.install(resumed)
    resumed.load_checkpoint(meta.get_checkpoint())
    np.testing.assert_equal(resumed.get_value("val_dice_1", step=None), [np.nan, 0.3, np.nan])
    _nnunet_epoch(resumed, 3)
    progress.log_interactive(resumed, 3, {"val_dice_1": 0.4})
    assert resumed.get_value("val_dice_1", step=-1) == 0.4


@pytest.mark.parametrize("with_interactive,panels", [(False, 3), (True, 4)])
def test_progress_png_gets_a_panel_for_interactive_dice(tmp_path, with_interactive, panels):
    from PIL import Image

    meta, _ = _meta(tmp_path)
    for epoch in range(4):
        _nnunet_epoch(meta, epoch)
        if with_interactive:
            progress.log_interactive(meta, epoch, {"val_dice_1": 0.2 * epoch} if epoch % 2 else {})
    meta.plot_progress_png(str(tmp_path))
    width, height = Image.open(tmp_path / "progress.png").size
    # nnU-Net's figure is 30 x 54 inches (3 panels); ours 12 x 20 (4 panels), both at 100 dpi
    assert (width, height) == ((1200, 2000) if panels == 4 else (3000, 5400))
    assert not list(tmp_path.glob(".progress*"))
