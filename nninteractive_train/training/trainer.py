"""nnInteractiveTrainer: a thin nnUNetTrainer subclass for promptable segmentation.

What it changes relative to nnU-Net (everything else — loss, logging, progress plot — is nnU-Net's; the optimiser
and the poly schedule are nnU-Net's unless ``training.optimizer`` / ``warmup_epochs`` / ``freeze_encoder_epochs``
say otherwise, ``optim.py``): 1 image + 7 prompt channels in, 2 classes out; batches of sampled objects with
simulated prompts (``loader.py``); follow-up rounds through the user-simulation pool (``interaction.py``); device
``cuda:LOCAL_RANK`` and DDP that also runs on CPU/gloo; checkpoints that hold the whole training state
(``state.py``: every rank's streams, resumable at any iteration); the run folder given by the user instead of
nnU-Net's results tree; with ``training.ema_decay`` a moving average of the weights (``ema.py``) that the
interactive validation scores and the export writes. The hooks below are nnU-Net's, in its order; the loop that
calls them is ``loop.py``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch.nn.parallel import DistributedDataParallel as DDP

from nninteractive_train.config import RunConfig
from nninteractive_train.distributed import DistEnv, split_batch
from nninteractive_train.files import atomic_write_json
from nninteractive_train.paths import SetupError
from nninteractive_train.sampler.report import SAMPLING_SUMMARY, collection_summary
from nninteractive_train.simulation.encoding import NUM_INTERACTION_CHANNELS
from nninteractive_train.training import checkpoint as ckpt
from nninteractive_train.training import progress
from nninteractive_train.training.ema import WeightEMA
from nninteractive_train.training.state import TrainState, capture, restore

BINARY_LABELS = {"background": 0, "object": 1}


class nnInteractiveTrainer(nnUNetTrainer):
    """Construct with ``build_trainer`` (nnU-Net's ``__init__`` cannot take the run config)."""

    # set on the instance by build_trainer before nnUNetTrainer.__init__ runs
    run_config: RunConfig
    run_dir: Path
    dist_env: DistEnv
    _device: torch.device

    # nnU-Net assigns its results-tree folders in __init__; the run folder replaces both.
    output_folder_base = property(lambda self: str(self.run_dir), lambda self, value: None)
    output_folder = property(lambda self: str(self.run_dir), lambda self, value: None)

    def __init__(self, plans: dict, configuration: str, fold, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        progress.install(self.logger)  # interactive validation metrics in progress.png and W&B
        cfg = self.run_config
        self.device = self._device  # nnU-Net forces cuda:<global rank> under DDP; we want cuda:LOCAL_RANK / cpu
        if self.device.type != "cuda":
            self.grad_scaler = None
        self.local_rank = self.dist_env.rank  # nnU-Net uses local_rank as "is rank 0" (logging, saving)
        self.num_epochs = cfg.training.num_epochs
        self.num_iterations_per_epoch = cfg.training.iterations_per_epoch
        self.num_val_iterations_per_epoch = cfg.training.val_iterations_per_epoch
        self.initial_lr = cfg.training.initial_lr
        self.weight_decay = cfg.training.weight_decay
        self.save_every = cfg.training.save_every
        self.enable_deep_supervision = cfg.training.deep_supervision
        self.interaction = None  # InteractionRound: created and restored in on_train_start, closed in shutdown
        self.train_seconds = 0.0  # wall time of training epochs so far, without interactive validation
        self.start_iteration = 0  # first iteration of the epoch in progress (> 0 after a mid-epoch resume)
        self.epoch_losses: list[float] = []
        self._t_epoch = self._t_iter = time.perf_counter()
        self._iter_ms: list[float] = []
        self._resume: TrainState | None = None  # read by load_checkpoint, restored in on_train_start
        self.cpu_bf16 = False  # set in initialize: training.cpu_bf16 on a CPU with native bfloat16
        self.ema: WeightEMA | None = None  # training.ema_decay: the weights' moving average (ema.py)
        self.object_group = None  # gloo group for CPU objects and the stop flag (NCCL would stage them on the GPU)

    # ---- network ---------------------------------------------------------------------------------------
    def _set_batch_size_and_oversample(self):
        sizes = split_batch(self.configuration_manager.batch_size, self.dist_env.world_size)
        self.batch_size = sizes[self.dist_env.rank]
        self.oversample_foreground_percent = 1.0

    def _do_i_compile(self):
        return bool(self.run_config.training.compile) and self.device.type == "cuda"

    def initialize(self):
        if self.was_initialized:
            raise RuntimeError("trainer already initialized")
        self._set_batch_size_and_oversample()
        if self.device.type == "cuda":  # as nnU-Net's run_training does; fixed patch shapes make autotuning pay
            torch.backends.cudnn.deterministic = False
            torch.backends.cudnn.benchmark = True
        self.num_input_channels = len(self.dataset_json["channel_names"]) + NUM_INTERACTION_CHANNELS
        self.network = self.build_network_architecture(
            self.plans_manager, self.configuration_manager, self.num_input_channels,
            self.label_manager.num_segmentation_heads, self.enable_deep_supervision,
        ).to(self.device)
        if self.run_config.training.channels_last:
            self.network = self.network.to(memory_format=torch.channels_last_3d)
        wants_bf16 = self.device.type == "cpu" and self.run_config.training.cpu_bf16
        self.cpu_bf16 = wants_bf16 and cpu_has_bf16()
        if wants_bf16 and not self.cpu_bf16:
            self.print_to_log_file("training.cpu_bf16: this CPU has no native bfloat16 instructions; float32")
        if self._do_i_compile():
            self.network = torch.compile(self.network)
        self.optimizer, self.lr_scheduler = self.configure_optimizers()
        if self.is_ddp:
            self.network = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.network)
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.network = DDP(self.network, device_ids=ids)
        self.loss = self._build_loss()
        decay = self.run_config.training.ema_decay
        self.ema = WeightEMA(self.module, decay) if decay is not None else None
        if self.is_ddp:
            self.object_group = object_group(self.run_config.training.dist_timeout_s)
        from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class

        self.dataset_class = infer_dataset_class(self.preprocessed_dataset_folder)
        self.was_initialized = True

    def configure_optimizers(self):
        from nninteractive_train.training.optim import EpochLR, encoder_groups, make_optimizer

        t = self.run_config.training
        # one group unless the encoder is frozen for a while (keeps checkpoints of plain runs single-group)
        params = encoder_groups(self.network) if t.freeze_encoder_epochs > 0 else self.network.parameters()
        optimizer = make_optimizer(params, t.optimizer, self.initial_lr, self.weight_decay)
        return optimizer, EpochLR(optimizer, self.initial_lr, self.num_epochs, t.warmup_epochs,
                                  t.freeze_encoder_epochs)

    @property
    def module(self) -> torch.nn.Module:
        """The bare network (no DDP / compile wrapper)."""
        mod = self.network.module if isinstance(self.network, DDP) else self.network
        return getattr(mod, "_orig_mod", mod)

    def set_deep_supervision_enabled(self, enabled: bool):
        self.module.decoder.deep_supervision = enabled

    def plot_network_architecture(self):
        pass  # nnU-Net's needs hiddenlayer/graphviz and is slow; the architecture is in plans.json

    # ---- data ------------------------------------------------------------------------------------------
    def do_split(self):
        fold = self.run_config.training.fold
        self.fold = "all" if fold == "all" else int(fold)
        return super().do_split()

    def get_dataloaders(self):
        from nninteractive_train.training.data import build_dataloaders

        mine = self._resume.rank_state(self.dist_env.rank, self.dist_env.world_size) if self._resume else None
        return build_dataloaders(self, resume=mine.loaders if mine is not None else None)

    def _ds_targets(self, target: torch.Tensor) -> list[torch.Tensor] | torch.Tensor:
        """Deep-supervision targets from the full-resolution target (B, 1, X, Y, Z)."""
        target = target.to(self.device, non_blocking=True)
        scales = self._get_deep_supervision_scales()
        if scales is None:
            return target.long()
        tf = target.float()
        return [
            target.long() if all(s == 1 for s in sc)
            else F.interpolate(tf, [round(i * s) for i, s in zip(target.shape[2:], sc)], mode="nearest-exact").long()
            for sc in scales
        ]

    # ---- steps -----------------------------------------------------------------------------------------
    def train_step(self, batch: dict) -> dict:
        """One optimiser step. Returns ``loss`` (float) and ``logits`` (B, 2, X, Y, Z), detached: the prediction
        the loop hands to the interaction round."""
        from torch import autocast

        from nnunetv2.utilities.helpers import dummy_context

        data = torch.as_tensor(batch["data"]).to(self.device, non_blocking=True)
        if self.run_config.training.channels_last:
            data = data.contiguous(memory_format=torch.channels_last_3d)
        target = self._ds_targets(torch.as_tensor(batch["target"]))
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            context = autocast("cuda", enabled=True)
        else:
            context = autocast("cpu", dtype=torch.bfloat16) if self.cpu_bf16 else dummy_context()
        with context:
            output = self.network(data)
            if self.cpu_bf16:  # the loss's softmax and sums in float32, as CUDA's autocast does
                output = [o.float() for o in output] if isinstance(output, (list, tuple)) else output.float()
            loss = self.loss(output, target)
        if self.grad_scaler is not None:
            self.grad_scaler.scale(loss).backward()
            self.grad_scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), 12)
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), 12)
            self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.module)
        logits = output[0] if isinstance(output, (list, tuple)) else output
        return {"loss": float(loss.detach().cpu()), "logits": logits.detach()}

    def validation_step(self, batch: dict) -> dict:
        batch = dict(batch, target=self._ds_targets(torch.as_tensor(batch["target"])))
        return super().validation_step(batch)

    def epoch_metrics_hook(self, epoch: int) -> dict:
        """Interactive validation every ``training.interactive_val_every`` epochs (rank 0; others return {})."""
        cfg = self.run_config
        every = cfg.training.interactive_val_every
        last = epoch == self.num_epochs - 1
        if self.dist_env.rank != 0 or every <= 0 or ((epoch + 1) % every and not last):
            return {}
        from nninteractive_train.evaluation import (interactive_validation, load_raw_validation_cases,
                                                    load_validation_cases)

        t = cfg.training
        if getattr(self, "_val_cases", None) is None:
            self._val_cases = (
                load_raw_validation_cases(t.interactive_val_raw, t.interactive_val_case_names,
                                          max_cases=t.interactive_val_cases) if t.interactive_val_raw else
                load_validation_cases(self.get_tr_and_val_datasets()[1], max_cases=t.interactive_val_cases))
        rng = np.random.default_rng([cfg.training.seed, 11])  # the same prompts every time: comparable epochs
        # the weights that will be exported: the average when training.ema_decay is set
        network, toggle = ((self.ema.averaged(self.module), None) if self.ema is not None
                           else (self.module, self.set_deep_supervision_enabled))
        return interactive_validation(
            network, self.plans_manager.plans, cfg.model.configuration, self.dataset_json, self._val_cases,
            rng=rng, device=self.device, decay=cfg.interaction.decay, export_patch=cfg.model.export_patch_size,
            steps=t.interactive_val_steps, max_objects_per_case=t.interactive_val_objects,
            set_deep_supervision=toggle)

    # ---- hooks (nnU-Net's, in nnU-Net's order; the loop is training/loop.py) ----------------------------
    def run_training(self):
        from nninteractive_train.training.loop import run_loop

        run_loop(self)

    def on_train_start(self):
        """nnU-Net's start (data loaders that continue saved streams, plans.json, debug.json), then the
        interaction round with its shared memory allocated (a too-small /dev/shm fails here), then a resumed
        state restored: after everything that draws random numbers at start-up."""
        from nninteractive_train.training.interaction import InteractionRound

        super().on_train_start()
        if self.dist_env.rank == 0:  # what the model card says about the training data
            summary = collection_summary(self.preprocessed_dataset_folder_base, self.preprocessed_dataset_folder,
                                         self.run_config.data.supervoxel_prob,
                                         size_power=self.run_config.data.object_size_power)
            if summary is not None:
                atomic_write_json(self.run_dir / SAMPLING_SUMMARY, summary)
        self.interaction = InteractionRound(self.run_config, self.dist_env.rank, self.num_epochs)
        try:
            self.interaction.prepare((self.batch_size, self.num_input_channels,
                                      *[int(p) for p in self.configuration_manager.patch_size]))
        except MemoryError as e:
            raise SetupError(f"rank {self.dist_env.rank}: {e}") from None
        if self._resume is not None:
            restore(self, self._resume)
            self._resume = None

    def on_epoch_start(self):
        self._t_epoch = time.perf_counter()
        if self.start_iteration == 0:  # a resumed epoch keeps the start time it logged before
            super().on_epoch_start()

    def on_train_epoch_start(self):
        self._t_iter, self._iter_ms = time.perf_counter(), []
        if self.start_iteration == 0:
            self.interaction.reset_epoch()
            self.epoch_losses = []
            super().on_train_epoch_start()
        else:  # resumed mid-epoch: its learning rate and counters are already logged / restored
            self.network.train()
            self.lr_scheduler.step(self.current_epoch)
            self.print_to_log_file(f"Epoch {self.current_epoch}, resumed at iteration {self.start_iteration}")

    def on_iteration_end(self, batch: dict, step: dict, iteration: int) -> None:
        """Keep the loss and the iteration time; with ``training.log_steps`` one line in iterations.jsonl."""
        from nninteractive_train.training.loop import append_jsonl, iteration_record

        self.epoch_losses.append(step["loss"])
        now = time.perf_counter()
        self._iter_ms.append((now - self._t_iter) * 1e3)
        self._t_iter = now
        if self.run_config.training.log_steps and self.dist_env.rank == 0:
            append_jsonl(self.run_dir / "iterations.jsonl",
                         iteration_record(self.current_epoch, iteration, step["loss"], batch))

    def on_train_epoch_end(self, train_outputs=None):
        super().on_train_epoch_end([{"loss": x} for x in self.epoch_losses])
        self.start_iteration = 0

    def on_epoch_end(self):
        """Metrics of the epoch, then nnU-Net's end of epoch (log lines, periodic and best checkpoints)."""
        from nninteractive_train.training.loop import append_jsonl, epoch_record

        epoch = self.current_epoch
        record = epoch_record(self, epoch)
        record.update(self.epoch_metrics_hook(epoch))
        # training time so far, without the interactive validation: the x axis of the learning curve
        self.train_seconds += time.perf_counter() - self._t_epoch - record.get("val_seconds", 0.0)
        record["train_minutes"] = self.train_seconds / 60
        progress.log_interactive(self.logger, epoch, record)  # before nnU-Net's end of epoch draws progress.png
        super().on_epoch_end()
        if self.dist_env.rank == 0:
            append_jsonl(self.run_dir / "metrics.jsonl", record)

    def on_train_end(self):
        """checkpoint_final.pth; checkpoint_latest.pth is removed only once the final one is written."""
        from nninteractive_train.training.loop import TrainingError

        final, latest = self.run_dir / "checkpoint_final.pth", self.run_dir / "checkpoint_latest.pth"
        if not self.save_checkpoint(str(final), epoch=self.current_epoch):
            raise TrainingError(f"writing the final checkpoint failed (see the log); {latest.name} is kept", final,
                                hint="free space and resume with --resume")
        if self.dist_env.rank == 0 and latest.is_file():
            os.remove(latest)
        self.shutdown()
        self.print_to_log_file("Training done.")

    def shutdown(self) -> None:
        """Close the interaction round and stop the data workers; idempotent (also runs after a failure)."""
        if self.interaction is not None:
            self.interaction.close()
        for dl in (self.dataloader_train, self.dataloader_val):
            finish = getattr(dl, "_finish", None)
            if finish is not None:
                finish()

    # ---- the training state ----------------------------------------------------------------------------
    def save_checkpoint(self, filename: str, epoch: int | None = None, iteration: int = 0) -> bool:
        """Write the training state to ``filename`` atomically (rank 0; every rank contributes). ``epoch``
        defaults to the next one, as nnU-Net calls it from ``on_epoch_end``. A failed write (full disk, quota)
        keeps the previous file, says so in the log and returns False; training goes on."""
        # checkpoint_best.pth is for export, not for resuming: no waiting follow-up batches in it
        followups = self.run_config.training.checkpoint_followups and Path(filename).name != "checkpoint_best.pth"
        state = capture(self, self.current_epoch + 1 if epoch is None else epoch, iteration, followups)
        ok = True
        if state is not None and not self.disable_checkpointing:
            error = ckpt.save_or_keep(state.to_checkpoint(), filename)
            if error is not None:
                ok = False
                kept = "is kept unchanged" if os.path.isfile(filename) else "does not exist yet"
                self.print_to_log_file(f"WARNING: writing {filename} failed: {error}; the previous "
                                       f"{Path(filename).name} {kept}")
        if self.is_ddp:
            dist.barrier(group=self.object_group)
        return ok

    def load_checkpoint(self, filename_or_checkpoint) -> None:
        """Read and check a checkpoint; it is restored in ``on_train_start`` (``state.restore``), once the data
        loaders and the interaction round exist. Raises ``CheckpointError`` naming the file."""
        if isinstance(filename_or_checkpoint, TrainState):
            self._resume = filename_or_checkpoint
        elif isinstance(filename_or_checkpoint, (str, os.PathLike)):  # CPU: RNG states must stay CPU tensors
            checkpoint = ckpt.load(filename_or_checkpoint, "cpu")
            self._resume = TrainState.from_checkpoint(checkpoint, filename_or_checkpoint)
        else:
            self._resume = TrainState.from_checkpoint(filename_or_checkpoint)
        self.current_epoch = self._resume.epoch  # the loaders' fresh streams are keyed by the start epoch
        if not self.was_initialized:
            self.initialize()


def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (AVX512-BF16 or AMX); emulated bf16 is slower than
    float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def object_group(timeout_s: float):
    """A gloo process group over all ranks (the default group itself when it is gloo) with ``timeout_s``."""
    from datetime import timedelta

    if dist.get_backend() == "gloo":
        return None
    return dist.new_group(backend="gloo", timeout=timedelta(seconds=timeout_s))


def build_trainer(cfg: RunConfig, plans: dict, dataset_json: dict, run_dir: str | os.PathLike,
                  env: DistEnv, device: torch.device) -> nnInteractiveTrainer:
    """Create the trainer for ``cfg``: nnU-Net's constructor cannot take extra arguments, so the run config,
    folder and rank are set on the instance before ``__init__`` runs."""
    trainer = nnInteractiveTrainer.__new__(nnInteractiveTrainer)
    trainer.run_config = cfg
    trainer.run_dir = Path(run_dir)
    trainer.dist_env = env
    trainer._device = device
    plans = dict(plans, continue_training=True)  # nnU-Net pops it without a default (docs/nnunet.md)
    djson = dict(dataset_json, labels=dict(BINARY_LABELS))
    fold = cfg.training.fold if cfg.training.fold == "all" else int(cfg.training.fold)
    trainer.__init__(plans, cfg.model.configuration, fold, djson, device)
    return trainer
