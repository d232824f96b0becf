"""nnInteractiveTrainer: a thin nnUNetTrainer subclass for promptable segmentation.

What it changes relative to nnU-Net (everything else — loss, logging, progress plot — is nnU-Net's; the optimiser
and the poly schedule are nnU-Net's unless ``training.optimizer`` / ``warmup_epochs`` / ``freeze_encoder_epochs``
say otherwise, ``optim.py``): 1 image + 7 prompt channels in, 2 classes out; batches of sampled objects with
simulated prompts (``loader.py``); follow-up rounds through the user-simulation pool (``interaction.py``); device
``cuda:LOCAL_RANK`` and DDP that also runs on CPU/gloo; atomic checkpoints that carry the resolved run config and
the interaction/sampler state; the run folder given by the user instead of nnU-Net's results tree.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch.nn.parallel import DistributedDataParallel as DDP

from nninteractive_train.config import RunConfig, to_dict
from nninteractive_train.distributed import DistEnv, split_batch
from nninteractive_train.simulation.encoding import NUM_INTERACTION_CHANNELS
from nninteractive_train.training import checkpoint as ckpt

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
        self.interaction = None  # InteractionRound, created in on_train_start
        self.train_seconds = 0.0  # wall time of training epochs so far, without interactive validation

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
        if self._do_i_compile():
            self.network = torch.compile(self.network)
        self.optimizer, self.lr_scheduler = self.configure_optimizers()
        if self.is_ddp:
            self.network = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.network)
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.network = DDP(self.network, device_ids=ids)
        self.loss = self._build_loss()
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

        return build_dataloaders(self)

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
        from torch import autocast

        from nnunetv2.utilities.helpers import dummy_context

        data = torch.as_tensor(batch["data"]).to(self.device, non_blocking=True)
        if self.run_config.training.channels_last:
            data = data.contiguous(memory_format=torch.channels_last_3d)
        target = self._ds_targets(torch.as_tensor(batch["target"]))
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context():
            output = self.network(data)
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
        if self.interaction is not None:
            logits = output[0] if isinstance(output, (list, tuple)) else output
            self.interaction.after_step(batch, logits.detach(), self.current_epoch)
        return {"loss": loss.detach().cpu().numpy()}

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
        return interactive_validation(
            self.module, self.plans_manager.plans, cfg.model.configuration, self.dataset_json, self._val_cases,
            rng=rng, device=self.device, decay=cfg.interaction.decay, export_patch=cfg.model.export_patch_size,
            steps=t.interactive_val_steps, max_objects_per_case=t.interactive_val_objects,
            set_deep_supervision=self.set_deep_supervision_enabled)

    # ---- loop, checkpoints -----------------------------------------------------------------------------
    def run_training(self):
        from nninteractive_train.training.loop import run_loop

        run_loop(self)

    def checkpoint_dict(self, next_epoch: int) -> dict:
        """Everything needed to resume and to export: nnU-Net's keys plus the run config and loop state."""
        extra = self.interaction.state_dict() if self.interaction is not None else None
        states = [None] * self.dist_env.world_size
        if self.is_ddp:
            dist.all_gather_object(states, extra)
        else:
            states = [extra]
        return {
            "network_weights": ckpt.clean_state_dict(self.module.state_dict()),
            "optimizer_state": self.optimizer.state_dict(),
            "grad_scaler_state": self.grad_scaler.state_dict() if self.grad_scaler is not None else None,
            "logging": self.logger.get_checkpoint(),
            "_best_ema": self._best_ema,
            "current_epoch": next_epoch,
            "train_seconds": self.train_seconds,
            "init_args": self.my_init_kwargs,
            "trainer_name": self.__class__.__name__,
            "inference_allowed_mirroring_axes": self.inference_allowed_mirroring_axes,
            "run_config": to_dict(self.run_config),
            "rank_states": states,
            "loader_sampler_state": self._loader_sampler_state(),
            "torch_rng_state": torch.get_rng_state(),
        }

    def save_checkpoint(self, filename: str, next_epoch: int | None = None) -> None:
        """Write ``filename`` atomically on rank 0; every rank contributes its loop state (a collective)."""
        state = self.checkpoint_dict(self.current_epoch + 1 if next_epoch is None else next_epoch)
        if self.dist_env.rank == 0 and not self.disable_checkpointing:
            ckpt.atomic_save(state, filename)
        if self.is_ddp:
            dist.barrier()

    def load_checkpoint(self, filename_or_checkpoint) -> None:
        checkpoint = (ckpt.load(filename_or_checkpoint, self.device)
                      if isinstance(filename_or_checkpoint, (str, os.PathLike)) else filename_or_checkpoint)
        if not self.was_initialized:
            self.initialize()
        self.module.load_state_dict(ckpt.clean_state_dict(checkpoint["network_weights"]))
        self.current_epoch = checkpoint["current_epoch"]
        self.train_seconds = checkpoint.get("train_seconds", 0.0)
        self.logger.load_checkpoint(checkpoint["logging"])
        self._best_ema = checkpoint["_best_ema"]
        self.optimizer.load_state_dict(checkpoint["optimizer_state"])
        if self.grad_scaler is not None and checkpoint.get("grad_scaler_state") is not None:
            self.grad_scaler.load_state_dict(checkpoint["grad_scaler_state"])
        self._resume_states = checkpoint.get("rank_states")
        self._resume_sampler_state = checkpoint.get("loader_sampler_state")

    def _in_process_loader(self):
        """The training InteractiveDataLoader when it runs in this process (no augmentation workers)."""
        return getattr(self.dataloader_train, "data_loader", None)

    def _loader_sampler_state(self) -> dict | None:
        """The collection sampler's position, when its stream lives in this process (else the workers'
        streams are re-derived from (seed, rank, worker, epoch) on resume)."""
        dl = self._in_process_loader()
        if dl is None or dl.sampler_factory is None:
            return None
        _ = dl.rng  # creates the sampler on first use
        return dl._sampler.state_dict()

    def restore_loader_state(self) -> None:
        state = getattr(self, "_resume_sampler_state", None)
        dl = self._in_process_loader()
        if state is not None and dl is not None and dl.sampler_factory is not None:
            _ = dl.rng
            dl._sampler.load_state_dict(state)


def build_trainer(cfg: RunConfig, plans: dict, dataset_json: dict, run_dir: str | os.PathLike,
                  env: DistEnv, device: torch.device) -> nnInteractiveTrainer:
    """Create the trainer for ``cfg``: nnU-Net's constructor cannot take extra arguments, so the run config,
    folder and rank are set on the instance before ``__init__`` runs."""
    trainer = nnInteractiveTrainer.__new__(nnInteractiveTrainer)
    trainer.run_config = cfg
    trainer.run_dir = Path(run_dir)
    trainer.dist_env = env
    trainer._device = device
    trainer._resume_states = None
    plans = dict(plans, continue_training=True)  # nnU-Net pops it without a default (docs/nnunet.md)
    djson = dict(dataset_json, labels=dict(BINARY_LABELS))
    fold = cfg.training.fold if cfg.training.fold == "all" else int(cfg.training.fold)
    trainer.__init__(plans, cfg.model.configuration, fold, djson, device)
    return trainer
