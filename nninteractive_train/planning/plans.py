"""Interactive plans: nnU-Net ResEnc-L without resampling, per-image z-score, no transpose, plus one
interactive configuration whose patch size, global batch and network width come from the run config.

The inference session ignores the plans' normalisation and transpose: it z-scores every image over the bounding
box of its non-zero voxels and never transposes (docs/nnunet.md). The planner below pins the same behaviour so that
training and inference see identical inputs.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np

from nninteractive_train.config import ModelConfig


def stage_layout(
    patch_size: Sequence[int], spacing: Sequence[float], max_stages: int
) -> tuple[list[list[int]], list[list[int]]]:
    """Pooling strides and conv kernel sizes per stage, as nnU-Net's planner derives them.

    Args:
        patch_size: (3,) voxels.
        spacing: (3,) mm, the configuration's target spacing (the native median spacing here).
        max_stages: cap on the number of stages.

    Returns:
        strides: ``n_stages`` × 3, the first stage ``[1, 1, 1]``.
        kernel_sizes: ``n_stages`` × 3.
    """
    from nnunetv2.experiment_planning.experiment_planners.network_topology import get_pool_and_conv_props

    _, pool_op_kernel_sizes, conv_kernel_sizes, new_patch, _ = get_pool_and_conv_props(
        list(spacing), list(patch_size), 4, 999999
    )
    if [int(i) for i in new_patch] != [int(i) for i in patch_size]:
        raise ValueError(
            f"patch size {list(patch_size)} cannot be pooled evenly for spacing {list(spacing)}; "
            f"nnU-Net would use {list(new_patch)}: set model.patch_size to that"
        )
    n = min(len(pool_op_kernel_sizes), max_stages)
    return [list(map(int, s)) for s in pool_op_kernel_sizes[:n]], [list(map(int, k)) for k in conv_kernel_sizes[:n]]


def per_stage(values: Sequence[int], n: int) -> list[int]:
    """Truncate ``values`` to ``n`` entries, repeating the last one if it is too short."""
    values = list(values)
    return (values + [values[-1]] * n)[:n]


def interactive_configuration(base: dict, model: ModelConfig) -> dict:
    """The plans entry of the interactive configuration, derived from the planner's ``3d_fullres``.

    Args:
        base: the ``3d_fullres`` configuration dict from the plans (carries spacing, normalisation, data id).
        model: patch size and global batch from the run config; the network from ``model.architecture`` when a
            model folder gave one, else derived from the widths and depth and the data's spacing.
    """
    arch = _given_architecture(model) if model.architecture is not None else _derived_architecture(base, model)
    return {
        "inherits_from": "3d_fullres",
        "patch_size": [int(i) for i in model.patch_size],
        "batch_size": int(model.global_batch_size),
        "architecture": arch,
        "normalization_schemes": ["ZScoreNormalization"] * len(base["normalization_schemes"]),
        "use_mask_for_norm": [False] * len(base["use_mask_for_norm"]),
    }


def _derived_architecture(base: dict, model: ModelConfig) -> dict:
    """The planner's ResEnc architecture with the stages, widths and blocks of ``model`` for its patch, laid out
    for ``model.layout_spacing`` (None: the data's spacing)."""
    spacing = base["spacing"] if model.layout_spacing is None else model.layout_spacing
    strides, kernels = stage_layout(model.patch_size, spacing, model.max_stages)
    n = len(strides)
    features = [min(model.base_features * 2**i, model.max_features) for i in range(n)]
    arch = copy.deepcopy(base["architecture"])
    arch["arch_kwargs"].update(
        n_stages=n,
        features_per_stage=features,
        kernel_sizes=kernels,
        strides=strides,
        n_blocks_per_stage=per_stage(model.blocks_per_stage, n),
        n_conv_per_stage_decoder=[1] * (n - 1),
    )
    return arch


def total_stride(architecture: dict) -> list[int]:
    """Product of the pooling strides per axis: every patch axis must be a multiple of it."""
    return [int(v) for v in np.prod(np.array(architecture["arch_kwargs"]["strides"]), axis=0)]


def _given_architecture(model: ModelConfig) -> dict:
    """An architecture taken from a model folder (``model.architecture``), as it is; the run's training patch
    must fit its total stride."""
    arch = copy.deepcopy(model.architecture)
    stride = total_stride(arch)
    if any(p % s for p, s in zip(model.patch_size, stride)):
        nearest = [max(s, int(round(p / s)) * s) for p, s in zip(model.patch_size, stride)]
        raise ValueError(f"model.patch_size {list(model.patch_size)} is not a multiple of the pretrained network's "
                         f"total stride {stride} on every axis; use e.g. {nearest}")
    return arch


def read_model_folder(model_dir) -> dict:
    """What a model folder says about its network: ``architecture`` (plans ``architecture`` dict), ``patch_size``
    (the inference patch), ``channels`` (image channels), ``configuration`` (its name).

    Raises:
        ValueError: plans.json / dataset.json missing or without exactly one usable configuration.
    """
    import json
    from pathlib import Path

    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    folder = Path(model_dir)
    for name in ("plans.json", "dataset.json"):
        if not (folder / name).is_file():
            raise ValueError(f"{folder / name} not found: {folder} is not an nnInteractive model folder")
    plans = json.loads((folder / "plans.json").read_text())
    names = sorted(plans.get("configurations", {}))
    checkpoint_conf = None
    ckpts = sorted(folder.glob("fold_*/checkpoint_final.pth"))
    if len(names) != 1 and ckpts:
        import torch

        checkpoint_conf = torch.load(ckpts[0], map_location="cpu", weights_only=False).get(
            "init_args", {}).get("configuration")
    name = names[0] if len(names) == 1 else checkpoint_conf
    if name not in names:
        raise ValueError(f"{folder / 'plans.json'}: cannot tell which of the configurations {names} the weights use")
    conf = PlansManager(plans).get_configuration(name).configuration
    channels = len(json.loads((folder / "dataset.json").read_text()).get("channel_names", {}))
    return {"architecture": copy.deepcopy(conf["architecture"]), "patch_size": [int(p) for p in conf["patch_size"]],
            "channels": channels, "configuration": name}


def export_configuration(plans: dict, configuration: str, export_patch: Sequence[int] | None) -> dict:
    """A copy of ``plans`` whose ``configuration`` is self-contained and has an inference-safe patch.

    The inference session's AutoZoom refinement uses a fixed 24-voxel margin, so every axis must be ≥ 96
    (docs/model_folder.md); a fully convolutional net trained on a smaller patch runs on a larger one, provided each
    axis stays divisible by the total stride.
    """
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans = copy.deepcopy(plans)
    cm = PlansManager(copy.deepcopy(plans)).get_configuration(configuration)
    conf = copy.deepcopy(cm.configuration)
    conf.pop("inherits_from", None)
    total_stride = np.prod(np.array(conf["architecture"]["arch_kwargs"]["strides"]), axis=0)
    patch = list(export_patch) if export_patch is not None else list(conf["patch_size"])
    patch = [int(max(p, 96)) for p in patch]
    patch = [int(np.ceil(p / s) * s) for p, s in zip(patch, total_stride)]
    conf["patch_size"] = patch
    plans["configurations"] = {configuration: conf}
    return plans
