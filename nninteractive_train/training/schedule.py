"""Small pure functions of the training loop: follow-up ramp, seeds, initial crop size."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def followup_probability(epoch: int, num_epochs: int, start: float = 0.3, end: float = 0.75) -> float:
    """Probability that a batch goes to user simulation after its prediction: linear from ``start`` at
    epoch 0 to ``end`` at the last epoch (``num_epochs - 1``); clamped outside that range."""
    if num_epochs <= 1:
        return float(end)
    t = min(max(epoch / (num_epochs - 1), 0.0), 1.0)
    return float(start + (end - start) * t)


def stream_seed(*keys: int) -> np.random.SeedSequence:
    """An independent, reproducible seed for a (seed, rank, worker, …) tuple."""
    return np.random.SeedSequence([int(k) for k in keys])


def int_seed(*keys: int) -> int:
    """A 32-bit integer seed from ``stream_seed`` (for APIs that take an int, e.g. nnU-Net's augmenters)."""
    return int(stream_seed(*keys).generate_state(1)[0])


def initial_patch_size(
    patch_size: Sequence[int], scaling: Sequence[float], rotation: float, transposable: bool
) -> list[int]:
    """The worst-case crop a loader must take before spatial augmentation if it does not know the sample's
    transform: large enough that zooming out by ``1/min(scaling)`` and rotating by up to ``rotation`` radians still
    samples image content (nnU-Net's initial crop ignores the scaling range, docs/nnunet.md). The training loader
    no longer takes it (``spatial.py`` crops per sample); it is the reference of ``scripts/bench_loader.py`` and of
    the equality tests of the per-sample crop.

    Args:
        patch_size: (3,) final patch in voxels.
        scaling: (lo, hi) scale factor range; factors < 1 zoom out and need a larger source region.
        rotation: maximum rotation angle in radians about any axis.
        transposable: axes may be swapped, so every axis needs the largest extent.
    """
    patch = np.asarray(patch_size, dtype=float)
    zoom_out = 1.0 / max(min(scaling), 1e-3)
    # a rotated box fits in its bounding sphere; cap the rotation's growth at the diagonal
    growth = min(np.sqrt(3.0), abs(np.cos(rotation)) + abs(np.sin(rotation)) * np.sqrt(2.0)) if rotation else 1.0
    size = np.ceil(patch * max(zoom_out, 1.0) * growth).astype(int)
    if transposable:
        size[:] = size.max()
    return [int(s) for s in size]
