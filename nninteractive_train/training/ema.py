"""An exponential moving average (EMA) of the network's weights, updated after every optimiser step.

Batch-1 steps on one object with one prompt make the weights of a short run jump from step to step; their average
over the last ~1 / (1 - decay) steps is the model that is validated and exported when ``training.ema_decay`` is
set (the raw weights keep training and are what a resume continues). Under nnU-Net's poly schedule, whose last
steps are small, it changed nothing measurable in the demo (README, row E1); it is for runs stopped before their
schedule ends and for constant-rate fine-tuning. The decay is warmed up as
``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so that the average does not remember the random
initialisation for hundreds of steps (timm's ``ModelEmaV2`` and TensorFlow's ``ExponentialMovingAverage`` do the
same).
"""

from __future__ import annotations

import copy

import torch


def ema_decay_at(updates: int, decay: float) -> float:
    """The decay used for the update after ``updates`` earlier updates: ``min(decay, (1 + n) / (10 + n))``."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


@torch.no_grad()
def ema_update(average: dict[str, torch.Tensor], weights: dict[str, torch.Tensor], decay: float) -> None:
    """``average ← decay · average + (1 − decay) · weights`` in place, per floating-point tensor; other tensors
    (integer buffers such as ``num_batches_tracked``) are copied. Both are state dicts with the same keys."""
    for name, avg in average.items():
        w = weights[name].detach()
        if avg.is_floating_point():
            avg.mul_(decay).add_(w.to(avg.dtype), alpha=1.0 - decay)
        else:
            avg.copy_(w)


class WeightEMA:
    """The average of a module's weights (copies of its state dict, on the module's device).

    Args:
        module: the bare network (no DDP / compile wrapper).
        decay: the long-run decay, in (0, 1).
    """

    def __init__(self, module: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.average = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def update(self, module: torch.nn.Module) -> None:
        ema_update(self.average, module.state_dict(), ema_decay_at(self.updates, self.decay))
        self.updates += 1

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates,
                "weights": {k: v.detach().cpu().clone() for k, v in self.average.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        for k, v in state["weights"].items():
            self.average[k].copy_(v)

    def averaged(self, module: torch.nn.Module) -> torch.nn.Module:
        """A copy of ``module`` holding the average (for validation; ``module`` is left as it is)."""
        copy_ = copy.deepcopy(module)
        copy_.load_state_dict(self.average)
        return copy_
