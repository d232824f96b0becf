"""The optimiser and learning-rate schedule of a run: nnU-Net's poly decay per epoch, optionally after a linear
warm-up, with the encoder optionally frozen (learning rate 0) for the first epochs of a fine-tuning run."""

from __future__ import annotations

from typing import Iterable

import torch


def make_optimizer(params: Iterable, name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """``sgd``: nnU-Net's (momentum 0.99, Nesterov, L2 ``weight_decay``); ``adamw``: AdamW with decoupled
    ``weight_decay``. ``params``: parameters or param groups; ``lr`` is the learning rate at epoch 0."""
    if name == "sgd":
        return torch.optim.SGD(params, lr, weight_decay=weight_decay, momentum=0.99, nesterov=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; use 'sgd' or 'adamw'")


def learning_rate(epoch: int, num_epochs: int, initial_lr: float, warmup_epochs: int = 0,
                  exponent: float = 0.9) -> float:
    """Learning rate of ``epoch`` (0-based): ``initial_lr · (e + 1) / (warmup + 1)`` during the warm-up, then
    nnU-Net's ``initial_lr · (1 - t)^0.9`` with ``t`` running from 0 after the warm-up to 1 at ``num_epochs``.
    Without warm-up it is exactly nnU-Net's ``PolyLRScheduler``."""
    if epoch < warmup_epochs:
        return initial_lr * (epoch + 1) / (warmup_epochs + 1)
    t = (epoch - warmup_epochs) / max(num_epochs - warmup_epochs, 1)
    return initial_lr * max(1.0 - t, 0.0) ** exponent


def encoder_groups(network: torch.nn.Module) -> list[dict]:
    """Two param groups, ``rest`` then ``encoder`` (``network.encoder``; DDP / compile wrappers are looked
    through). ``rest`` comes first because nnU-Net logs the first group's learning rate. The decoder of nnU-Net's
    networks holds a reference to the encoder, so membership is decided by identity, not by module."""
    bare = getattr(network, "module", network)
    bare = getattr(bare, "_orig_mod", bare)
    enc = {id(p) for p in bare.encoder.parameters()}
    return [{"name": "rest", "params": [p for p in network.parameters() if id(p) not in enc]},
            {"name": "encoder", "params": [p for p in network.parameters() if id(p) in enc]}]


class EpochLR:
    """Sets each param group's learning rate from ``learning_rate``; groups named ``encoder`` get 0 during the
    first ``freeze_encoder_epochs`` epochs (no update, no weight decay, for SGD and AdamW alike). Called as
    nnU-Net calls its scheduler: ``step(current_epoch)`` at the start of every epoch."""

    def __init__(self, optimizer: torch.optim.Optimizer, initial_lr: float, num_epochs: int,
                 warmup_epochs: int = 0, freeze_encoder_epochs: int = 0):
        self.optimizer = optimizer
        self.initial_lr, self.num_epochs = initial_lr, num_epochs
        self.warmup_epochs, self.freeze_encoder_epochs = warmup_epochs, freeze_encoder_epochs
        self.step(0)

    def step(self, epoch: int | None = None) -> None:
        lr = learning_rate(int(epoch or 0), self.num_epochs, self.initial_lr, self.warmup_epochs)
        for group in self.optimizer.param_groups:
            frozen = group.get("name") == "encoder" and (epoch or 0) < self.freeze_encoder_epochs
            group["lr"] = 0.0 if frozen else lr

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]
