"""Training augmentation: nnU-Net's default pipeline with the nnInteractive changes (docs/method.md).

Changes to nnU-Net's defaults: scaling probability 0.3 (was 0.2) over [0.5, 2] (was [0.7, 1.4]) with an
independent factor per axis with probability 0.6; random transposition of axes of equal patch extent with
p 0.5; intensity inversion with p 0.1. Segmentation here is the binary target of the sampled object.

The spatial transform (rotation, scaling) is not part of the composed pipeline: the loader draws it per sample
and crops only the source region it reads (``spatial.py``); the pipeline below runs on the finished patch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from nninteractive_train.config import DataConfig
from nninteractive_train.training.spatial import SpatialAug


def transposable_axes(patch_size: Sequence[int]) -> tuple[int, ...]:
    """Spatial axes that may be permuted: those sharing the most common patch extent (≥ 2 of them)."""
    sizes = list(patch_size)
    best = max(set(sizes), key=sizes.count)
    axes = tuple(i for i, s in enumerate(sizes) if s == best)
    return axes if len(axes) >= 2 else ()


def spatial_augmentation(data: DataConfig, rotation: float = np.pi / 6) -> SpatialAug:
    """Rotation (nnU-Net's p 0.2, ±``rotation`` rad) and the config's scaling, drawn per sample by the loader."""
    return SpatialAug(p_rotation=0.2, rotation=rotation, p_scaling=data.p_scaling, scaling=tuple(data.scaling),
                      p_synchronize_scaling=1 - data.p_independent_scale_per_axis)


def training_transforms(patch_size: Sequence[int], data: DataConfig):
    """The composed batchgeneratorsv2 pipeline after the spatial transform, for one patch-sized sample
    ``{"image": (1, X, Y, Z), "segmentation": (1, X, Y, Z)}``.

    Mirroring is left out: the prompt channels are added after augmentation, so mirroring adds nothing that
    the random object and patch placement do not already give, and inference never mirrors.
    """
    from batchgeneratorsv2.transforms.intensity.brightness import MultiplicativeBrightnessTransform
    from batchgeneratorsv2.transforms.intensity.contrast import BGContrast, ContrastTransform
    from batchgeneratorsv2.transforms.intensity.gamma import GammaTransform
    from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
    from batchgeneratorsv2.transforms.intensity.inversion import InvertImageTransform
    from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform
    from batchgeneratorsv2.transforms.spatial.low_resolution import SimulateLowResolutionTransform
    from batchgeneratorsv2.transforms.spatial.transpose import TransposeAxesTransform
    from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
    from batchgeneratorsv2.transforms.utils.random import RandomTransform
    from batchgeneratorsv2.transforms.utils.remove_label import RemoveLabelTansform

    t = [
        RandomTransform(GaussianNoiseTransform(noise_variance=(0, 0.1), p_per_channel=1,
                                               synchronize_channels=True), apply_probability=0.1),
        RandomTransform(GaussianBlurTransform(blur_sigma=(0.5, 1.0), synchronize_channels=False,
                                              synchronize_axes=False, p_per_channel=0.5, benchmark=True),
                        apply_probability=0.2),
        RandomTransform(MultiplicativeBrightnessTransform(multiplier_range=BGContrast((0.75, 1.25)),
                                                          synchronize_channels=False, p_per_channel=1),
                        apply_probability=0.15),
        RandomTransform(ContrastTransform(contrast_range=BGContrast((0.75, 1.25)), preserve_range=True,
                                          synchronize_channels=False, p_per_channel=1), apply_probability=0.15),
        RandomTransform(SimulateLowResolutionTransform(scale=(0.5, 1), synchronize_channels=False,
                                                       synchronize_axes=True, ignore_axes=None,
                                                       allowed_channels=None, p_per_channel=0.5),
                        apply_probability=0.25),
        RandomTransform(GammaTransform(gamma=BGContrast((0.7, 1.5)), p_invert_image=1, synchronize_channels=False,
                                       p_per_channel=1, p_retain_stats=1), apply_probability=0.1),
        RandomTransform(GammaTransform(gamma=BGContrast((0.7, 1.5)), p_invert_image=0, synchronize_channels=False,
                                       p_per_channel=1, p_retain_stats=1), apply_probability=0.3),
        RandomTransform(InvertImageTransform(p_invert_image=1, p_synchronize_channels=1, p_per_channel=1),
                        apply_probability=data.p_invert),
    ]
    axes = transposable_axes(patch_size)
    if axes and data.p_transpose > 0:
        t.append(RandomTransform(TransposeAxesTransform(set(axes)), apply_probability=data.p_transpose))
    t.append(RemoveLabelTansform(-1, 0))
    return ComposeTransforms(t)


def train_augmentation(patch_size: Sequence[int], data: DataConfig, rotation: float):
    """(composed transforms, spatial augmentation or None) for the training loader; ``data.augment=False`` gives
    plain crops with no intensity change (the validation pipeline)."""
    if not data.augment:
        return validation_transforms(), None
    return training_transforms(patch_size, data), spatial_augmentation(data, rotation)


def validation_transforms():
    from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
    from batchgeneratorsv2.transforms.utils.remove_label import RemoveLabelTansform

    return ComposeTransforms([RemoveLabelTansform(-1, 0)])
