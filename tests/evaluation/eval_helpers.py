"""Shared pieces of the evaluation tests: hand-written plans of a tiny network (no planning or training needed),
the network itself, and small generated cases."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

CONFIG = "3d_tiny"
SPACING = (2.0, 1.0, 1.0)
ARCH = {
    "network_class_name": "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
    "arch_kwargs": {
        "n_stages": 3, "features_per_stage": [4, 8, 16], "conv_op": "torch.nn.modules.conv.Conv3d",
        "kernel_sizes": [[3, 3, 3]] * 3, "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
        "n_blocks_per_stage": [1, 1, 1], "n_conv_per_stage_decoder": [1, 1], "conv_bias": True,
        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d", "norm_op_kwargs": {"eps": 1e-05, "affine": True},
        "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True},
    },
    "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
}
PLANS = {
    "dataset_name": "Dataset969_EvalTest", "plans_name": "nnInteractivePlans",
    "original_median_spacing_after_transp": list(SPACING), "original_median_shape_after_transp": [24, 40, 40],
    "image_reader_writer": "SimpleITKIO", "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
    "experiment_planner_used": "nnInteractivePlanner", "label_manager": "LabelManager",
    "foreground_intensity_properties_per_channel": {"0": {"max": 1.0, "mean": 0.0, "median": 0.0, "min": -1.0,
                                                          "percentile_00_5": -1.0, "percentile_99_5": 1.0,
                                                          "std": 1.0}},
    "configurations": {CONFIG: {
        "data_identifier": "nnInteractivePlans_3d_tiny", "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2, "patch_size": [32, 32, 32], "median_image_size_in_voxels": [24, 40, 40],
        "spacing": list(SPACING), "normalization_schemes": ["ZScoreNormalization"], "use_mask_for_norm": [False],
        "resampling_fn_data": "no_resampling_hack", "resampling_fn_seg": "no_resampling_hack",
        "resampling_fn_data_kwargs": {}, "resampling_fn_seg_kwargs": {},
        "resampling_fn_probabilities": "no_resampling_hack", "resampling_fn_probabilities_kwargs": {},
        "architecture": ARCH, "batch_dice": False,
    }},
}
DATASET_JSON = {"channel_names": {"0": "MRI"}, "labels": {"background": 0, "sphere": 1, "ellipsoid": 2, "tube": 3,
                                                          "blob": 4},
                "numTraining": 2, "file_ending": ".nii.gz"}
EVAL_DS = 969


def build_network(seed: int = 0) -> torch.nn.Module:
    """A freshly initialised tiny network with 1 image + 7 prompt channels in, 2 out, deep supervision on
    (as the trainer holds it)."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    from nnInteractive.trainer.nnInteractiveTrainer import nnInteractiveTrainer_stub

    torch.manual_seed(seed)
    pm = PlansManager(copy.deepcopy(PLANS))
    return nnInteractiveTrainer_stub.build_network_architecture(pm, pm.get_configuration(CONFIG), 8, 2, True)


def write_nifti(array: np.ndarray, spacing, path: Path) -> None:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(array)
    img.SetSpacing([float(s) for s in spacing[::-1]])
    sitk.WriteImage(img, str(path), True)


def small_case(seed: int, shape=(24, 40, 40)) -> tuple[np.ndarray, np.ndarray]:
    from nninteractive_train.data.synthetic import make_case

    return make_case(np.random.default_rng(seed), shape, SPACING)
