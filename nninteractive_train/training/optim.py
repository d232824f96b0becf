"""The optimiser of a run (``training.optimizer``); the schedule stays nnU-Net's poly decay per epoch."""

from __future__ import annotations

from typing import Iterable

import torch


def make_optimizer(params: Iterable[torch.nn.Parameter], name: str, lr: float,
                   weight_decay: float) -> torch.optim.Optimizer:
    """``sgd``: nnU-Net's (momentum 0.99, Nesterov, L2 ``weight_decay``); ``adamw``: AdamW with decoupled
    ``weight_decay``. ``lr`` is the learning rate at epoch 0."""
    if name == "sgd":
        return torch.optim.SGD(params, lr, weight_decay=weight_decay, momentum=0.99, nesterov=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; use 'sgd' or 'adamw'")
